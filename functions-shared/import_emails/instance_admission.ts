/**
 * Admission of one run to its function instance (isolate_budget.ts holds the
 * instance's budget): a slot among the runs it serves at once, waited for while the
 * run's time lasts; then the run's window, and its chunk budget (runChunkBudget): what
 * each chunk may ask the server for, within the run's own limit and the instance's,
 * charged for what arrives. `leave` frees the slot.
 *
 * Fair share: while another run waits for a slot, a run that has had its turn
 * (MIN_TURN_MS) stops at its next chunk boundary (yieldsTurn) and ends `partial`, so a
 * slow or lying server holds a slot for one turn and one FETCH at most (the FETCH has
 * its own time cap, imap_session.ts).
 */
import {
  BYTES_PER_MESSAGE,
  type IsolateBudget,
  type RunWindow,
  runWindow,
} from "./isolate_budget.ts";

/** What the folders of one run draw on, chunk by chunk (folder_sync.ts). */
export interface ChunkBudget {
  /** UIDs the next chunk may ask for, at most `wanted` (0: stop), reserved in the instance. */
  take(wanted: number): number;
  /** After a chunk: what arrived is charged, the rest of `taken` goes back. */
  settle(taken: number, arrived: { messages: number; bytes: number }): void;
  /** Another run waits and this one has had its turn: stop at this chunk boundary. */
  yieldTurn(): boolean;
  /** After a folder's SEARCH: the UIDs it listed are charged (LISTED_UID_BYTES each). */
  listed(count: number): void;
}

/**
 * What a UID listed by SEARCH is charged as, in bytes of the instance's budget: parsing
 * a listing costs CPU too, ~1.3 µs a UID (through the real path, two runs listing
 * 300,000 UIDs each spent ~0.8 s of the instance's CPU), a hundredth of a message.
 */
export const LISTED_UID_BYTES = Math.round(BYTES_PER_MESSAGE / 100);

/** A run's minimum turn before it yields its slot to a waiting run. */
export const MIN_TURN_MS = 1_000;
/**
 * UIDs a run may ask for in all, as a multiple of the messages it may receive: a
 * server that announces mail and sends none is asked a bounded number of times.
 */
export const REQUEST_FACTOR = 2;

/**
 * Chunks in a row a run may get nothing for. Each FETCH costs the instance CPU even
 * when nothing comes (~0.3 ms, measured through the real path: two runs asking a
 * server for 10,000 listed UIDs each, 10 at a time, spent the instance's 1 s soft
 * limit), so a server that lists UIDs and sends none is asked five times, not
 * REQUEST_FACTOR times a run's budget. An honest server sends what it just listed; a
 * chunk deleted meanwhile is one empty chunk, not five in a row.
 */
export const MAX_EMPTY_CHUNKS = 5;

/**
 * The one rule for a run's own share of a chunk: at most `maxMessages` received
 * (counting chunks in flight as if they all arrive), at most REQUEST_FACTOR times
 * that asked for, and nothing more after MAX_EMPTY_CHUNKS chunks in a row brought
 * nothing.
 */
export function runAllowance(
  run: { requested: number; received: number; inFlight: number; emptyChunks?: number },
  maxMessages: number,
): number {
  if ((run.emptyChunks ?? 0) >= MAX_EMPTY_CHUNKS) return 0;
  return Math.max(
    0,
    Math.min(
      maxMessages - run.received - run.inFlight,
      maxMessages * REQUEST_FACTOR - run.requested,
    ),
  );
}

/** The one rule for yielding: someone waits and this run has held its slot for its turn. */
export function yieldsTurn(state: { waiting: number; heldMs: number }): boolean {
  return state.waiting > 0 && state.heldMs >= MIN_TURN_MS;
}

/** A run's chunk budget: runAllowance, then the instance's grant (isolate_budget.ts). */
export function runChunkBudget(
  isolate: IsolateBudget,
  options: { maxMessages: number; enteredAt: number; now: () => number },
): ChunkBudget & { readonly requested: number; readonly received: number } {
  const run = { requested: 0, received: 0, inFlight: 0, emptyChunks: 0 };
  return {
    get requested() {
      return run.requested;
    },
    get received() {
      return run.received;
    },
    take(wanted) {
      const taken = isolate.reserve(Math.min(wanted, runAllowance(run, options.maxMessages)));
      run.requested += taken;
      run.inFlight += taken;
      return taken;
    },
    settle(taken, arrived) {
      run.inFlight -= taken;
      run.received += arrived.messages;
      run.emptyChunks = arrived.messages === 0 ? run.emptyChunks + 1 : 0;
      isolate.settle(taken, arrived);
    },
    listed: (count) => isolate.settle(0, { messages: 0, bytes: count * LISTED_UID_BYTES }),
    yieldTurn: () =>
      yieldsTurn({ waiting: isolate.waiting(), heldMs: options.now() - options.enteredAt }),
  };
}

export type Admission =
  | {
    admitted: false;
    /** What the instance had no budget left for. */
    why: string;
    /** When the run's time started (unix ms). */
    started: number;
    /** Frees the slot if the run took one. */
    leave(): void;
  }
  | {
    admitted: true;
    started: number;
    window: RunWindow;
    /** What the run's chunks may ask for and receive. */
    budget: ReturnType<typeof runChunkBudget>;
    leave(): void;
  };

export async function admitRun(
  isolate: IsolateBudget,
  options: {
    limits: { maxMessages: number; maxSeconds: number; stopGraceSeconds: number };
    now: () => number;
    shutdown?: AbortSignal;
  },
): Promise<Admission> {
  const { limits, now } = options;
  /** The run's time from `at`, within its own limits and the instance's wall clock. */
  const windowFrom = (at: number) =>
    runWindow(at, {
      startedAt: isolate.startedAt,
      wallClockMs: isolate.wallClockMs,
      maxSeconds: limits.maxSeconds,
      stopGraceSeconds: limits.stopGraceSeconds,
    });

  const arrived = now();
  // Several runs may land in this instance: wait for a slot while the run's time lasts.
  const entry = await isolate.enter({
    until: windowFrom(arrived).deadline,
    signal: options.shutdown,
  });
  if (entry === "refused") {
    return { admitted: false, why: "it was busy with other imports", started: arrived, leave() {} };
  }
  const started = entry === "waited" ? now() : arrived;
  const window = windowFrom(started);
  if (isolate.messagesLeft() === 0 || window.deadline <= started) {
    const why = isolate.messagesLeft() === 0
      ? "its messages are spent"
      : "its wall clock is nearly over";
    return { admitted: false, why, started, leave: () => isolate.leave() };
  }
  return {
    admitted: true,
    started,
    window,
    budget: runChunkBudget(isolate, { maxMessages: limits.maxMessages, enteredAt: started, now }),
    leave: () => isolate.leave(),
  };
}
