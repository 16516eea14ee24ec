/**
 * Reads a dotenv file the way `supabase functions serve --env-file` does for what
 * we write: KEY=value per line, or KEY="value" where \n stands for a newline (a PEM
 * certificate fits on one line that way).
 */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = line.match(/^([A-Z_][A-Z0-9_]*)=(.*)$/);
    if (!match) continue;
    const [, name, raw] = match;
    env[name] = raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')
      ? raw.slice(1, -1).replaceAll("\\n", "\n").replaceAll('\\"', '"')
      : raw;
  }
  return env;
}

export function readEnvFile(path: string | undefined): Record<string, string> {
  return path ? parseEnvFile(Deno.readTextFileSync(path)) : {};
}
