/**
 * The one rule for how an import run ends: its status and the error text users read,
 * from what happened to each mailbox. Pure (no I/O), tested as a table in
 * run_outcome_test.ts; import_run.ts records what it decides.
 */
import type { FinalStatus } from "../runs/run_store.ts";

/** What one mailbox's import came to (mailbox_import.ts), as the run reports it. */
export interface MailboxOutcome {
  mailboxId: string;
  /** Another run holds its lease. */
  busy?: boolean;
  /** Paused after repeated failed logins; `error` says why. */
  paused?: boolean;
  /**
   * An OAuth mailbox whose grant the provider refused: it waits for its user to connect it
   * again. Neither a failure nor a success of the run (retrying cannot help, and one such
   * mailbox must not fail, back off or pause the user's others); `error` says so.
   */
  reconnectNeeded?: boolean;
  error?: string;
  hasMore?: boolean;
  /** The run's time was up before this mailbox's turn. */
  notStarted?: boolean;
  commands?: Record<string, number>;
}

export interface RunOutcome {
  status: FinalStatus;
  error: string | null;
  /** Mail is left for the next run. */
  hasMore: boolean;
}

export const NO_MAILBOX = "no mailbox configured";
const ALREADY_RUNNING = "An import of this mailbox is already running";
const BUDGET_REACHED = "Budget reached; the next run continues";
const STOPPED_EARLY =
  "Stopped early: the function instance is shutting down; the next run continues";
const SHUT_DOWN_BEFORE_ANYTHING =
  "The function instance shut down before anything was imported; the next run retries";

/**
 * How a run that imported mailboxes ends. `fetched` is what the run saved in all;
 * `shuttingDown` whether the instance announced its end (beforeunload).
 */
export function runOutcome(
  mailboxes: MailboxOutcome[],
  run: { fetched: number; shuttingDown: boolean },
): RunOutcome {
  const waiting = mailboxes.filter((outcome) => outcome.reconnectNeeded);
  if (waiting.length === 0) return outcomeOf(mailboxes, run);
  const notes = waiting.flatMap((outcome) => outcome.error ? [outcome.error] : []).join("; ");
  const others = mailboxes.filter((outcome) => !outcome.reconnectNeeded);
  if (others.length === 0) return { status: "skipped", error: notes, hasMore: false };
  const rest = outcomeOf(others, run);
  return {
    // The run did not cover every mailbox: never "succeeded", never a failure for it.
    status: rest.status === "succeeded" ? "partial" : rest.status,
    error: [rest.error, notes].filter((text) => text).join("; "),
    hasMore: rest.hasMore,
  };
}

function outcomeOf(
  mailboxes: MailboxOutcome[],
  run: { fetched: number; shuttingDown: boolean },
): RunOutcome {
  const errors = mailboxes.flatMap((outcome) => outcome.error ? [outcome.error] : []);
  const hasMore = mailboxes.some((outcome) => outcome.hasMore);
  const savedSome = run.fetched > 0;
  if (mailboxes.length === 0) return { status: "skipped", error: NO_MAILBOX, hasMore: false };
  if (mailboxes.every((outcome) => outcome.busy || outcome.paused)) {
    // Nothing was attempted: say why, without calling it a failure.
    const busy = mailboxes.some((outcome) => outcome.busy);
    return {
      status: "skipped",
      error: (busy ? [ALREADY_RUNNING, ...errors] : errors).join("; "),
      hasMore,
    };
  }
  if (errors.length > 0) {
    return { status: savedSome ? "partial" : "failed", error: errors.join("; "), hasMore };
  }
  if (hasMore && run.shuttingDown) {
    // The instance is going away: say so, and fail only if nothing was saved.
    return savedSome
      ? { status: "partial", error: STOPPED_EARLY, hasMore }
      : { status: "failed", error: SHUT_DOWN_BEFORE_ANYTHING, hasMore };
  }
  return hasMore
    ? { status: "partial", error: BUDGET_REACHED, hasMore }
    : { status: "succeeded", error: null, hasMore };
}

/**
 * How a run ends that never got its turn in this instance (`why`: what the instance
 * had no budget left for): the next run continues, unless the instance is going away.
 */
export function notStartedOutcome(why: string, shuttingDown: boolean): RunOutcome {
  return shuttingDown ? { status: "failed", error: SHUT_DOWN_BEFORE_ANYTHING, hasMore: true } : {
    status: "partial",
    error:
      `Not started: this function instance had no budget left (${why}); the next run continues`,
    hasMore: true,
  };
}

/** A mailbox as the run row's details list it. */
export function mailboxDetails(outcome: MailboxOutcome): Record<string, unknown> {
  return {
    id: outcome.mailboxId,
    ...(outcome.busy ? { already_running: true } : {}),
    ...(outcome.paused ? { paused: true } : {}),
    ...(outcome.reconnectNeeded ? { reconnect_needed: true } : {}),
    ...(outcome.notStarted ? { not_started: true } : {}),
    ...(outcome.error ? { error: outcome.error } : {}),
    ...(outcome.commands ? { imap_commands: outcome.commands } : {}),
  };
}
