/**
 * One import run for one user: the work behind both a verified cron request and a
 * signed-in user's "sync now". The run is started (only from `accepted`), admitted to
 * its function instance (instance_admission.ts), imports each enabled mailbox of the
 * user in turn within its budget (mailbox_import.ts), and ends with the truth
 * (run_outcome.ts: succeeded, partial, skipped or failed), with counts and an error
 * text that never holds a credential.
 */
import {
  createIsolateBudget,
  DEFAULT_ISOLATE_BUDGET,
  type IsolateBudget,
} from "./isolate_budget.ts";
import { errorText, type Logger } from "../platform/log.ts";
import type { RunStore } from "../runs/run_store.ts";
import { noMessages } from "./folder_sync.ts";
import { type Admission, admitRun } from "./instance_admission.ts";
import { type ImapConnector, importMailbox, type RunTally } from "./mailbox_import.ts";
import type { OAuthAccess } from "./oauth_access.ts";
import type { MailStore } from "./mail_store.ts";
import { DEFAULT_MAX_BODY_CHARS } from "./message_parser.ts";
import { DEFAULT_IMPORTER_CONFIG } from "../platform/config.ts";
import {
  mailboxDetails,
  type MailboxOutcome,
  NO_MAILBOX,
  notStartedOutcome,
  type RunOutcome,
  runOutcome,
} from "./run_outcome.ts";

export interface ImportJob {
  runId: string;
  userId: string;
}

export type ImportRunner = (job: ImportJob) => Promise<void>;

export interface ImportLimits {
  /**
   * Messages per run. Parsing costs CPU; the edge runtime allows 2 s of it per function
   * instance, shared by every run it serves (isolate_budget.ts keeps the instance's total).
   */
  maxMessages: number;
  /**
   * Seconds per run after which no new chunk starts; cut shorter when the instance's
   * wall clock ends sooner (isolate_budget.ts runWindow, the one home of that rule).
   */
  maxSeconds: number;
  /** Bytes fetched per message; a larger message keeps headers, the text that fit, and attachment metadata. */
  maxMessageBytes: number;
  maxBodyChars: number;
  /**
   * Messages per FETCH and per database transaction. Up to three chunks are in
   * flight (fetching, parsing, writing): 10 instead of 25 took ~20-30 MB off the
   * importer's peak RSS at the same speed (BENCHMARKS.md).
   */
  chunkSize: number;
  /**
   * Seconds one FETCH (one chunk) may take; longer, and the session is ended (the run
   * keeps what it stored): a server that drips its answer holds a run this long at most.
   */
  fetchSeconds: number;
  /**
   * Seconds after maxSeconds at which the IMAP session is closed whatever the server
   * is doing (a chunk in flight may finish meanwhile; a slow drip may not hold the
   * run past the edge wall clock of 150 s).
   */
  stopGraceSeconds: number;
}

export const DEFAULT_LIMITS: ImportLimits = {
  ...DEFAULT_IMPORTER_CONFIG.limits, // maxMessages, maxSeconds: set by the environment
  stopGraceSeconds: 20,
  fetchSeconds: 15,
  maxMessageBytes: 1024 * 1024,
  maxBodyChars: DEFAULT_MAX_BODY_CHARS,
  chunkSize: 10,
};

export interface ImportRunnerDeps {
  store: RunStore;
  mail: MailStore;
  log: Logger;
  /** Opens the IMAP session (runner_from_config.ts: imapflow with the configured CA). */
  connect: ImapConnector;
  /** Access tokens for OAuth mailboxes (oauth_access.ts), one cache per function instance. */
  oauth?: OAuthAccess;
  limits?: Partial<ImportLimits>;
  now?: () => number;
  /**
   * What this function instance has left for imports, shared by every run it serves
   * (isolate_budget.ts). Default: one instance with the platform's defaults, started now.
   */
  isolate?: IsolateBudget;
  /**
   * Aborted when the function instance is about to be torn down (isolate_shutdown.ts):
   * the run stops at the next chunk boundary, saves, releases and ends at once.
   */
  shutdown?: AbortSignal;
}

export function createImportRunner(deps: ImportRunnerDeps): ImportRunner {
  const { store, mail, log } = deps;
  const limits = { ...DEFAULT_LIMITS, ...deps.limits };
  const now = deps.now ?? Date.now;
  const isolate = deps.isolate ??
    createIsolateBudget({ ...DEFAULT_ISOLATE_BUDGET, startedAt: now(), now });
  const mailboxDeps = {
    mail,
    log,
    connect: deps.connect,
    oauth: deps.oauth,
    limits,
    now,
    shutdown: deps.shutdown,
  };
  const shuttingDown = () => deps.shutdown?.aborted === true;

  /**
   * Records how the run ended (run_outcome.ts decided it); a partial run with more to
   * import is then offered for continuation at once (the database decides which).
   */
  const finish = async (runId: string, outcome: RunOutcome, details: Record<string, unknown>) => {
    const finished = await store.finishRun(runId, outcome.status, {
      error: outcome.error ?? undefined,
      details,
    });
    if (finished && outcome.status === "partial" && outcome.hasMore) {
      await store.continueRun(runId).catch((failure) =>
        log.warn("Cannot queue the continuation; the schedule's follow-up continues", {
          run_id: runId,
          error: errorText(failure),
        })
      );
    }
    return finished;
  };

  return async ({ runId, userId }) => {
    const mustFinishBy = isolate.startedAt + isolate.wallClockMs;
    if (!(await store.startRun(runId, { mustFinishBy }))) {
      log.warn("Import not started: run is not accepted", { run_id: runId });
      return;
    }
    const admission = await admitRun(isolate, { limits, now, shutdown: deps.shutdown });
    try {
      if (!admission.admitted) {
        const details = {
          requested: 0,
          fetched: 0,
          inserted: 0,
          duplicates: 0,
          duration_ms: now() - admission.started,
          has_more: true,
          not_started: true,
        };
        await finish(runId, notStartedOutcome(admission.why, shuttingDown()), details)
          .catch((failure) =>
            log.error("Cannot finish run", { run_id: runId, error: errorText(failure) })
          );
        log.info("Import not started", { run_id: runId, user_id: userId, reason: admission.why });
        return;
      }
      await importAdmitted(runId, userId, admission);
    } finally {
      admission.leave();
    }
  };

  /** The admitted run's mailboxes, in turn, drawing on its chunk budget. */
  async function importAdmitted(
    runId: string,
    userId: string,
    admission: Extract<Admission, { admitted: true }>,
  ): Promise<void> {
    const { started, window, budget } = admission;
    try {
      const mailboxes = await mail.importTargets(userId);
      if (mailboxes.length === 0) {
        await finish(runId, runOutcome([], { fetched: 0, shuttingDown: false }), {
          requested: 0,
          fetched: 0,
          inserted: 0,
          duplicates: 0,
        });
        log.info("Import skipped", { run_id: runId, user_id: userId, reason: NO_MAILBOX });
        return;
      }

      const tally: RunTally = { ...noMessages(), resets: [] };
      const outcomes: MailboxOutcome[] = [];
      for (const mailbox of mailboxes) {
        if (now() >= window.deadline || shuttingDown()) {
          // No time left to start this one: the next run does.
          outcomes.push({ mailboxId: mailbox.id, hasMore: true, notStarted: true });
          continue;
        }
        outcomes.push(
          await importMailbox(mailboxDeps, {
            runId,
            mailbox,
            tally,
            window,
            budget,
          }),
        );
      }
      const outcome = runOutcome(outcomes, {
        fetched: tally.fetched,
        shuttingDown: shuttingDown(),
      });
      // The details contract: auto_sync.finish_run's comment (requested, fetched,
      // inserted, has_more decide backoff, pause, follow-up and continuation).
      await finish(runId, outcome, {
        requested: tally.requested,
        fetched: tally.fetched,
        inserted: tally.inserted,
        remapped: tally.remapped,
        duplicates: tally.duplicates,
        bytes: tally.bytes,
        duration_ms: now() - started,
        has_more: outcome.hasMore,
        uidvalidity_resets: tally.resets,
        mailboxes: outcomes.map(mailboxDetails),
      });
      log.info("Import finished", {
        run_id: runId,
        user_id: userId,
        status: outcome.status,
        fetched: tally.fetched,
        inserted: tally.inserted,
        has_more: outcome.hasMore,
      });
    } catch (error) {
      log.error("Import failed", { run_id: runId, error: errorText(error) });
      await store.finishRun(runId, "failed", {
        error: "Import failed unexpectedly; see the function log",
      })
        .catch(() => {});
    }
  }
}
