/**
 * One import run for one user: the work behind both a verified cron request and a
 * signed-in user's "sync now". Imports each enabled mailbox of the user within a
 * budget (messages and seconds that fit the edge limits), one import per mailbox at
 * a time, and ends the run with the truth: succeeded, partial (budget reached or a
 * mailbox failed after others imported), skipped (nothing to import, or already
 * running) or failed, with counts and an error text that never holds a credential.
 */
import {
  createIsolateBudget,
  DEFAULT_ISOLATE_BUDGET,
  type IsolateBudget,
  type RunWindow,
  runWindow,
} from "./isolate_budget.ts";
import { errorText, type Logger } from "../platform/log.ts";
import type { FinalStatus, RunStore } from "../runs/run_store.ts";
import { safeLine } from "./safe_text.ts";
import { type FolderResult, type MessageCounts, noMessages, syncFolder } from "./folder_sync.ts";
import { HostNotAllowedError } from "./host_policy.ts";
import { ImapSessionError } from "./imap_answers.ts";
import type { ImapSession } from "./imap_session.ts";
import type { Mailbox, MailStore } from "./mail_store.ts";
import { DEFAULT_MAX_BODY_CHARS } from "./message_parser.ts";
import { DEFAULT_IMPORTER_CONFIG } from "../platform/config.ts";

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
   * Seconds after maxSeconds at which the IMAP session is closed whatever the server
   * is doing (a chunk in flight may finish meanwhile; a slow drip may not hold the
   * run past the edge wall clock of 150 s).
   */
  stopGraceSeconds: number;
}

export const DEFAULT_LIMITS: ImportLimits = {
  ...DEFAULT_IMPORTER_CONFIG.limits, // maxMessages, maxSeconds: set by the environment
  stopGraceSeconds: 20,
  maxMessageBytes: 1024 * 1024,
  maxBodyChars: DEFAULT_MAX_BODY_CHARS,
  chunkSize: 10,
};

/** Opens the IMAP session for a mailbox, fetching at most `maxMessageBytes` of each message. */
export type ImapConnector = (
  mailbox: Mailbox,
  credential: string,
  options: { maxMessageBytes: number; stopAt: number },
) => Promise<ImapSession>;

/** The run's running counts, summed over its folders. */
interface RunTally extends MessageCounts {
  resets: string[];
}

function addFolder(tally: RunTally, folder: string, result: FolderResult) {
  tally.requested += result.requested;
  tally.fetched += result.fetched;
  tally.inserted += result.inserted;
  tally.remapped += result.remapped;
  tally.duplicates += result.duplicates;
  tally.bytes += result.bytes;
  if (result.reset) tally.resets.push(folder);
}

export interface ImportRunnerDeps {
  store: RunStore;
  mail: MailStore;
  log: Logger;
  /** Opens the IMAP session (runner_from_config.ts: imapflow with the configured CA). */
  connect: ImapConnector;
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

interface MailboxOutcome {
  mailboxId: string;
  busy?: boolean;
  paused?: boolean;
  error?: string;
  hasMore?: boolean;
  /** The run's time was up before this mailbox's turn. */
  notStarted?: boolean;
  commands?: Record<string, number>;
}

const CANNOT_CONNECT =
  /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|CONNECT_TIMEOUT|GREETING_TIMEOUT|ClosedAfterConnectTLS|ClosedAfterConnectText)$/;
const CONNECTION_LOST = /^(ECONNRESET|EPIPE|NoConnection|EConnectionClosed|ETIMEOUT)$/;

/** The text without the credential; scrub before any cut, so no part of it survives one. */
function withoutCredential(text: string, credential: string | null): string {
  return credential && credential.length >= 4 ? text.replaceAll(credential, "[redacted]") : text;
}

/**
 * The error text a user reads for a failed mailbox import (run and mailbox rows).
 * Generic where details would make the importer an oracle for the network it runs
 * in: no resolved address, no connect, timeout or certificate detail (those go to
 * the log). Server text is kept only for IMAP command errors, one line, without
 * control characters, and with the credential scrubbed.
 */
export function describeImportError(error: unknown, mailbox: Mailbox, credential: string | null) {
  const e = error as {
    authenticationFailed?: boolean;
    code?: string;
    message?: string;
    responseText?: string;
  };
  const server = `"${mailbox.host}:${mailbox.port}"`;
  let text: string;
  if (e?.authenticationFailed) {
    text = `Login failed for "${mailbox.username}" at ${mailbox.host}: the server refused the ${
      mailbox.auth_kind === "oauth2" ? "access token" : "password"
    }`;
  } else if (error instanceof ImapSessionError) {
    text = `${error.message} (${server})`;
  } else if (error instanceof HostNotAllowedError || (e?.code && CANNOT_CONNECT.test(e.code))) {
    text = `Cannot connect to the mail server ${server}`;
  } else if (e?.code && CONNECTION_LOST.test(e.code)) {
    text = `The connection to the mail server ${server} was lost`;
  } else if (e?.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(e.code)) {
    text = `The TLS certificate of ${mailbox.host} is not trusted`;
  } else {
    const message = error instanceof Error ? error.message : String(error);
    const detail = e?.responseText && e.responseText !== message ? `: ${e.responseText}` : "";
    text = `IMAP error at ${mailbox.host}: ${message.split("\n")[0]}${detail}`;
  }
  return {
    text: safeLine(withoutCredential(text, credential), 500),
    authFailed: Boolean(e?.authenticationFailed),
  };
}

export function createImportRunner(deps: ImportRunnerDeps): ImportRunner {
  const { store, mail, log } = deps;
  const limits = { ...DEFAULT_LIMITS, ...deps.limits };
  const now = deps.now ?? Date.now;
  const { connect } = deps;
  const isolate = deps.isolate ??
    createIsolateBudget({ ...DEFAULT_ISOLATE_BUDGET, startedAt: now(), now });

  async function importMailbox(
    runId: string,
    mailbox: Mailbox,
    tally: RunTally,
    window: RunWindow & { maxMessages: number },
  ): Promise<MailboxOutcome> {
    const { deadline } = window;
    if (mailbox.paused_reason) {
      return { mailboxId: mailbox.id, paused: true, error: mailbox.paused_reason };
    }
    // The run's budget plus a minute, but never past its instance's end: a run killed
    // with its instance must not keep the mailbox from the next run for long.
    const leaseSeconds = Math.min(
      limits.maxSeconds + 60,
      Math.ceil((window.mustFinishBy - now()) / 1000) + 5,
    );
    if (!(await mail.claim(mailbox.id, runId, leaseSeconds))) {
      return { mailboxId: mailbox.id, busy: true };
    }
    let credential: string | null = null;
    let session: ImapSession | null = null;
    try {
      credential = await mail.credential(mailbox.id);
      if (!credential) throw new Error("No password or token is stored for this mailbox");
      session = await connect(mailbox, credential, {
        maxMessageBytes: limits.maxMessageBytes,
        stopAt: window.stopAt,
      });
      const states = await mail.folderStates(mailbox.id);
      let hasMore = false;
      for (const folder of mailbox.folders) {
        const result = await syncFolder({
          session,
          store: mail,
          mailbox,
          folder,
          state: states.get(folder),
          limits,
          maxMessages: window.maxMessages - tally.requested,
          deadline,
          now,
          stop: deps.shutdown,
        });
        addFolder(tally, folder, result);
        if (result.error !== undefined) throw result.error;
        if (result.hasMore) {
          hasMore = true;
          break;
        }
      }
      await mail.recordOutcome(mailbox.id, { error: null, authFailed: false });
      return { mailboxId: mailbox.id, hasMore, commands: session.commands };
    } catch (error) {
      const described = describeImportError(error, mailbox, credential);
      // The details the user's text leaves out, for the operator (never the credential).
      const code = (error as { code?: unknown })?.code;
      log.warn("Mailbox import failed", {
        run_id: runId,
        mailbox_id: mailbox.id,
        code: typeof code === "string" ? code : undefined,
        error: errorText(
          withoutCredential(error instanceof Error ? error.message : String(error), credential),
        ),
      });
      const paused = await mail.recordOutcome(mailbox.id, {
        error: described.text,
        authFailed: described.authFailed,
      })
        .catch(() => null);
      return {
        mailboxId: mailbox.id,
        error: paused ? `${described.text}. ${paused}` : described.text,
        commands: session?.commands,
      };
    } finally {
      await session?.close().catch(() => {});
      await mail.release(mailbox.id, runId).catch(() => {});
    }
  }

  /** The run's time from `at`, within its own limits and the instance's wall clock. */
  const windowFrom = (at: number) =>
    runWindow(at, {
      startedAt: isolate.startedAt,
      wallClockMs: isolate.wallClockMs,
      maxSeconds: limits.maxSeconds,
      stopGraceSeconds: limits.stopGraceSeconds,
    });

  return async ({ runId, userId }) => {
    const mustFinishBy = isolate.startedAt + isolate.wallClockMs;
    if (!(await store.startRun(runId, { mustFinishBy }))) {
      log.warn("Import not started: run is not accepted", { run_id: runId });
      return;
    }
    const started = now();
    // Several runs may land in this instance: wait for a slot while the run's time lasts.
    const entry = await isolate.enter({
      until: windowFrom(started).deadline,
      signal: deps.shutdown,
    });
    if (entry === "refused") {
      await endNotStarted(runId, userId, started, "it was busy with other imports");
      return;
    }
    try {
      await importWithinWindow(runId, userId, entry === "waited" ? now() : started);
    } finally {
      isolate.leave();
    }
  };

  /** Ends a run that never got its turn in this instance; the shutdown case as below. */
  async function endNotStarted(runId: string, userId: string, started: number, why: string) {
    const shuttingDown = deps.shutdown?.aborted === true;
    const error = shuttingDown
      ? "The function instance shut down before anything was imported; the next run retries"
      : `Not started: this function instance had no budget left (${why}); the next run continues`;
    await store.finishRun(runId, shuttingDown ? "failed" : "partial", {
      error,
      details: {
        fetched: 0,
        inserted: 0,
        duplicates: 0,
        duration_ms: now() - started,
        has_more: true,
      },
    }).catch((failure) =>
      log.error("Cannot finish run", { run_id: runId, error: errorText(failure) })
    );
    log.info("Import not started", { run_id: runId, user_id: userId, reason: why });
  }

  async function importWithinWindow(runId: string, userId: string, started: number) {
    const window = windowFrom(started);
    const maxMessages = Math.min(limits.maxMessages, isolate.messagesLeft());
    if (maxMessages === 0 || window.deadline <= started) {
      const why = maxMessages === 0 ? "its messages are spent" : "its wall clock is nearly over";
      await endNotStarted(runId, userId, started, why);
      return;
    }
    // Reserved up front so that runs side by side cannot overspend; the rest is given back.
    isolate.spend(maxMessages);
    let requested = 0;
    try {
      const mailboxes = await mail.importTargets(userId);
      if (mailboxes.length === 0) {
        await store.finishRun(runId, "skipped", {
          error: "no mailbox configured",
          details: { fetched: 0, inserted: 0, duplicates: 0 },
        });
        log.info("Import skipped", {
          run_id: runId,
          user_id: userId,
          reason: "no mailbox configured",
        });
        return;
      }

      const deadline = window.deadline;
      const tally: RunTally = { ...noMessages(), resets: [] };
      const outcomes: MailboxOutcome[] = [];
      for (const mailbox of mailboxes) {
        if (now() >= deadline || deps.shutdown?.aborted) {
          // No time left to start this one: the next run does.
          outcomes.push({ mailboxId: mailbox.id, hasMore: true, notStarted: true });
          continue;
        }
        outcomes.push(await importMailbox(runId, mailbox, tally, { ...window, maxMessages }));
      }
      requested = tally.requested;

      const errors = outcomes.flatMap((outcome) => outcome.error ? [outcome.error] : []);
      const hasMore = outcomes.some((outcome) => outcome.hasMore);
      let status: FinalStatus;
      let error: string | null = errors.join("; ") || null;
      if (outcomes.every((outcome) => outcome.busy || outcome.paused)) {
        // Nothing was attempted: say why, without calling it a failure.
        status = "skipped";
        error = outcomes.some((outcome) => outcome.busy)
          ? ["An import of this mailbox is already running", ...errors].join("; ")
          : errors.join("; ");
      } else if (errors.length > 0) {
        status = tally.fetched > 0 ? "partial" : "failed";
      } else if (hasMore && deps.shutdown?.aborted) {
        // The instance is going away: say so, and fail only if nothing was saved.
        status = tally.fetched > 0 ? "partial" : "failed";
        error = tally.fetched > 0
          ? "Stopped early: the function instance is shutting down; the next run continues"
          : "The function instance shut down before anything was imported; the next run retries";
      } else {
        status = hasMore ? "partial" : "succeeded";
        if (hasMore) error = "Budget reached; the next run continues";
      }
      const details = {
        fetched: tally.fetched,
        inserted: tally.inserted,
        remapped: tally.remapped,
        duplicates: tally.duplicates,
        bytes: tally.bytes,
        duration_ms: now() - started,
        has_more: hasMore,
        uidvalidity_resets: tally.resets,
        mailboxes: outcomes.map((outcome) => ({
          id: outcome.mailboxId,
          ...(outcome.busy ? { already_running: true } : {}),
          ...(outcome.paused ? { paused: true } : {}),
          ...(outcome.notStarted ? { not_started: true } : {}),
          ...(outcome.error ? { error: outcome.error } : {}),
          ...(outcome.commands ? { imap_commands: outcome.commands } : {}),
        })),
      };
      await store.finishRun(runId, status, { error: error ?? undefined, details });
      log.info("Import finished", {
        run_id: runId,
        user_id: userId,
        status,
        fetched: tally.fetched,
        inserted: tally.inserted,
        has_more: hasMore,
      });
    } catch (error) {
      log.error("Import failed", { run_id: runId, error: errorText(error) });
      await store.finishRun(runId, "failed", {
        error: "Import failed unexpectedly; see the function log",
      })
        .catch(() => {});
    } finally {
      isolate.spend(requested - maxMessages); // gives back what the run did not request
    }
  }
}
