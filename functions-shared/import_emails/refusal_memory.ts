/**
 * "Sync now" refusals this function instance can answer without the database: after
 * the database accepted a user's manual run (at most one a minute) or refused one
 * (with its Retry-After), a repeat within that time is refused from memory, so a user
 * pressing the button in a loop costs no transaction and no advisory lock on the
 * instance's small pool. The database stays the authority: an instance that remembers
 * nothing (a fresh one, another one) asks it, and memory only ever refuses, never
 * admits.
 */

/** The database's gap between two manual runs of a user (request_manual_run's p_min_gap). */
export const MANUAL_RUN_GAP_SECONDS = 60;
/** Users remembered at most; the oldest are forgotten first (they then ask the database). */
export const MAX_REMEMBERED = 10_000;

export interface RefusalMemory {
  /** Seconds to wait if this instance knows the user must, else null (ask the database). */
  retryAfter(userId: string): number | null;
  /** The database refused until `seconds` from now, or accepted a run (the gap). */
  remember(userId: string, seconds: number): void;
}

export function createRefusalMemory(now: () => number = Date.now): RefusalMemory {
  const until = new Map<string, number>();
  return {
    retryAfter(userId) {
      const end = until.get(userId);
      if (end === undefined) return null;
      const left = Math.ceil((end - now()) / 1000);
      if (left > 0) return left;
      until.delete(userId);
      return null;
    },
    remember(userId, seconds) {
      until.delete(userId); // re-inserted last: the Map's order is the forgetting order
      until.set(userId, now() + seconds * 1000);
      if (until.size > MAX_REMEMBERED) until.delete(until.keys().next().value!);
    },
  };
}
