/**
 * What one function instance (an edge-runtime isolate) can give the imports it runs.
 * Limits are per isolate, not per request (edge-runtime
 * crates/base/src/worker/supervisor/strategy_per_worker.rs; README "Edge runtime
 * limits"): every request and background task an isolate serves shares its wall clock
 * (150 s on the free plan, 400 s on paid ones), its CPU time (1 s soft, 2 s hard) and
 * its 256 MB, and it takes requests until half its wall clock. So several signed
 * requests landing in one instance share one budget here:
 *
 *   - at most `maxConcurrentRuns` imports at a time (the others wait their turn);
 *   - at most `maxMessages` messages received over the instance's life, a message
 *     counting one more for every BYTES_PER_MESSAGE it brings: an estimate of the CPU
 *     the instance spends on them, lined up with the runtime's CPU limits (chunkGrant
 *     says why). Charged on arrival: a chunk reserves the UIDs it asks for, and after it
 *     what the server did not send goes back (chunkGrant, settle), so a server that
 *     announces mail and sends none spends nothing of other runs'. A run that finds it
 *     spent ends at once; the runtime has retired the instance by then (CPU soft limit),
 *     so the continuation lands in a fresh one;
 *   - each run's time window ends before the instance's wall clock does (runWindow).
 *
 * Configured from the environment (user secrets FUNCTION_WALL_CLOCK_SECONDS,
 * IMPORT_MAX_CONCURRENT_RUNS, IMPORT_MAX_MESSAGES_PER_INSTANCE; defaults and bounds in
 * platform/config.ts).
 */
import { DEFAULT_IMPORTER_CONFIG } from "../platform/config.ts";

export interface IsolateBudgetOptions {
  wallClockSeconds: number;
  maxConcurrentRuns: number;
  maxMessages: number;
  /** When the isolate started (unix ms); the module's load time by default. */
  startedAt?: number;
  now?: () => number;
}

export const DEFAULT_ISOLATE_BUDGET = DEFAULT_IMPORTER_CONFIG.isolate;

/** The module's load time: as early in the isolate's life as this code can see. */
const LOADED_AT = Date.now();

export interface RunWindow {
  /** No new chunk starts after this (unix ms). */
  deadline: number;
  /** The IMAP session is closed at this, whatever the server is doing. */
  stopAt: number;
  /** The isolate is gone by then: the run row records it, reconcile calls it lost after. */
  mustFinishBy: number;
}

/**
 * The one rule for a run's time: its own budget (maxSeconds, then stopGraceSeconds to
 * close), cut so that it ends, saved and finished, before the isolate's wall clock
 * does. The margin left for saving and finish_run is 10 s, or a tenth of a short
 * wall clock; the grace a fifth of it at most.
 */
export function runWindow(
  now: number,
  options: { startedAt: number; wallClockMs: number; maxSeconds: number; stopGraceSeconds: number },
): RunWindow {
  const { startedAt, wallClockMs, maxSeconds, stopGraceSeconds } = options;
  const mustFinishBy = startedAt + wallClockMs;
  const margin = Math.min(10_000, wallClockMs / 10);
  const grace = Math.min(stopGraceSeconds * 1000, wallClockMs / 5);
  const stopAt = Math.min(now + maxSeconds * 1000 + grace, mustFinishBy - margin);
  const deadline = Math.min(now + maxSeconds * 1000, stopAt - grace);
  return { deadline, stopAt, mustFinishBy };
}

export interface IsolateBudget {
  readonly startedAt: number;
  readonly wallClockMs: number;
  /**
   * Takes a run slot at once ("entered") or after waiting for one ("waited");
   * "refused" when the signal aborts or `until` passes first.
   */
  enter(
    options: { until: number; signal?: AbortSignal },
  ): Promise<"entered" | "waited" | "refused">;
  leave(): void;
  /** Runs waiting for a slot now. */
  waiting(): number;
  /** Messages this instance may still receive (not received, not reserved by a chunk). */
  messagesLeft(): number;
  /**
   * Reserves up to `wanted` messages for one chunk (chunkGrant): how many the chunk
   * may ask the server for. Runs side by side cannot overspend.
   */
  reserve(wanted: number): number;
  /** After the chunk: `reserved` goes back, what arrived is charged (messages and bytes). */
  settle(reserved: number, arrived: { messages: number; bytes: number }): void;
}

/**
 * Bytes that cost the instance the CPU of one more message: parsing costs CPU per
 * byte too. Measured on the stack (BENCHMARKS.md, "Instance budget"): after warm-up a
 * message costs ~0.135 ms of the isolate's CPU plus ~2.6 µs per KiB, so ~52 KiB cost
 * one message; 48 KiB errs on the side of bytes.
 */
export const BYTES_PER_MESSAGE = 24 * 1024;

/**
 * The one rule for what a chunk may reserve of the instance: what is neither received
 * (a message, plus one for every BYTES_PER_MESSAGE received) nor reserved by another
 * chunk. The default budget (IMPORT_MAX_MESSAGES_PER_INSTANCE, 9,000) is ~1.4 s of the
 * isolate's CPU with its start and warm-up: past the runtime's soft limit (1 s: the
 * instance takes no new request, so the next run lands in a fresh instance) and short
 * of its hard limit (2 s: killed). A budget spent before the soft limit would leave
 * the next request in an instance with nothing to give (a minute's wait); one past the
 * hard limit would have the run killed mid-chunk.
 */
export function chunkGrant(
  wanted: number,
  instance: { maxMessages: number; received: number; receivedBytes: number; reserved: number },
): number {
  const spent = instance.received + Math.floor(instance.receivedBytes / BYTES_PER_MESSAGE);
  const left = instance.maxMessages - spent - instance.reserved;
  return Math.max(0, Math.min(wanted, left));
}

export function createIsolateBudget(options: IsolateBudgetOptions): IsolateBudget {
  const now = options.now ?? Date.now;
  let running = 0;
  const account = {
    maxMessages: options.maxMessages,
    received: 0,
    receivedBytes: 0,
    reserved: 0,
  };
  const waiting: (() => void)[] = [];
  return {
    startedAt: options.startedAt ?? LOADED_AT,
    wallClockMs: options.wallClockSeconds * 1000,
    enter({ until, signal }) {
      if (running < options.maxConcurrentRuns) {
        running++;
        return Promise.resolve("entered");
      }
      return new Promise((resolve) => {
        const done = (entry: "waited" | "refused") => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          const index = waiting.indexOf(wake);
          if (index >= 0) waiting.splice(index, 1);
          resolve(entry);
        };
        const wake = () => {
          running++;
          done("waited");
        };
        const onAbort = () => done("refused");
        const timer = setTimeout(() => done("refused"), Math.max(0, until - now()));
        signal?.addEventListener("abort", onAbort, { once: true });
        waiting.push(wake);
      });
    },
    leave() {
      running--;
      waiting.shift()?.();
    },
    waiting: () => waiting.length,
    messagesLeft: () => chunkGrant(Infinity, account),
    reserve(wanted) {
      const granted = chunkGrant(wanted, account);
      account.reserved += granted;
      return granted;
    },
    settle(reserved, arrived) {
      account.reserved = Math.max(0, account.reserved - reserved);
      account.received += arrived.messages;
      account.receivedBytes += arrived.bytes;
    },
  };
}
