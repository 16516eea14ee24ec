/**
 * Structured logs: one JSON object per line on stdout/stderr (what Supabase's log
 * explorer indexes). Callers pass reasons and ids, never secrets or tokens.
 */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export function createLogger(component: string): Logger {
  const write = (level: string, message: string, fields: LogFields = {}) => {
    const line = JSON.stringify({ level, component, message, ...fields });
    if (level === "error") console.error(line);
    else if (level === "warn") console.warn(line);
    else console.log(line);
  };
  return {
    info: (message, fields) => write("info", message, fields),
    warn: (message, fields) => write("warn", message, fields),
    error: (message, fields) => write("error", message, fields),
  };
}

/** An error's message for logs: first line only, bounded. */
export function errorText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0].slice(0, 300);
}

/** A logger that keeps lines in memory, for tests that inspect what was logged. */
export function createMemoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const write = (level: string) => (message: string, fields: LogFields = {}) => {
    lines.push(JSON.stringify({ level, message, ...fields }));
  };
  return { lines, info: write("info"), warn: write("warn"), error: write("error") };
}
