/**
 * Logging of refusals. Those that need no key to provoke (anything refused before
 * the signature checked out, so without a verified run id) can be sent by anyone on
 * the internet: one log line each would let a flood of junk requests flood the log
 * and cost CPU. The first such refusal per status and reason in each window is
 * logged, with how many like it were suppressed before it. Refusals of correctly
 * signed requests (they carry the run id) are always logged.
 */
import type { Logger } from "../platform/log.ts";

export type RejectionLog = (status: number, reason: string, runId?: string) => void;

export function createRejectionLog(
  log: Logger,
  options: { windowMs?: number; now?: () => number } = {},
): RejectionLog {
  const windowMs = options.windowMs ?? 10_000;
  const now = options.now ?? Date.now;
  const windows = new Map<string, { until: number; suppressed: number }>();
  return (status, reason, runId) => {
    if (runId === undefined) {
      const key = `${status} ${reason}`;
      const window = windows.get(key);
      const time = now();
      if (window && time < window.until) {
        window.suppressed += 1;
        return;
      }
      if (windows.size > 100) windows.clear(); // reasons are a fixed set; stay bounded anyway
      windows.set(key, { until: time + windowMs, suppressed: 0 });
      log.warn("Rejected signed request", {
        status,
        reason,
        ...(window?.suppressed ? { suppressed_since_last: window.suppressed } : {}),
      });
      return;
    }
    log.warn("Rejected signed request", { status, reason, run_id: runId });
  };
}
