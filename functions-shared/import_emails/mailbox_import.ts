/**
 * One mailbox's import within a run: its lease, its credential (for an OAuth mailbox, an
 * access token from its refresh token: oauth_access.ts), one IMAP session, its folders in
 * order (folder_sync.ts), then its outcome recorded and the lease released whatever
 * happened. A failure is described for the user (import_error.ts) and detailed for the
 * operator in the log, never with the credential. A grant the provider refused puts the
 * mailbox into "reconnect needed" (not a failed login, not retried).
 */
import { ReconnectNeededError } from "../oauth/oauth_errors.ts";
import { errorText, type Logger } from "../platform/log.ts";
import { type FolderResult, type MessageCounts, syncFolder } from "./folder_sync.ts";
import type { ImapSession } from "./imap_session.ts";
import { describeImportError, reconnectNeededText, withoutCredential } from "./import_error.ts";
import { type OAuthAccess, OAuthNotConfiguredError, sha256Hex } from "./oauth_access.ts";
import type { ChunkBudget } from "./instance_admission.ts";
import type { RunWindow } from "./isolate_budget.ts";
import type { Mailbox, MailStore } from "./mail_store.ts";
import type { MailboxOutcome } from "./run_outcome.ts";

/**
 * Opens the IMAP session for a mailbox, fetching at most `maxMessageBytes` of each
 * message; one FETCH that takes longer than `fetchTimeoutMs` ends the session.
 */
export type ImapConnector = (
  mailbox: Mailbox,
  credential: string,
  options: { maxMessageBytes: number; stopAt: number; fetchTimeoutMs: number },
) => Promise<ImapSession>;

/** The run's running counts, summed over its folders. */
export interface RunTally extends MessageCounts {
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

export interface MailboxImportDeps {
  mail: MailStore;
  log: Logger;
  connect: ImapConnector;
  /** Access tokens for OAuth mailboxes; without it such a mailbox fails as not configured. */
  oauth?: OAuthAccess;
  limits: {
    maxSeconds: number;
    maxMessageBytes: number;
    maxBodyChars: number;
    chunkSize: number;
    fetchSeconds: number;
  };
  now: () => number;
  shutdown?: AbortSignal;
}

export async function importMailbox(
  deps: MailboxImportDeps,
  job: {
    runId: string;
    mailbox: Mailbox;
    /** Added to as folders finish. */
    tally: RunTally;
    /** The run's time. */
    window: RunWindow;
    /** What the run's chunks may ask for and receive (instance_admission.ts). */
    budget: ChunkBudget;
  },
): Promise<MailboxOutcome> {
  const { mail, log, limits, now } = deps;
  const { runId, mailbox, tally, window, budget } = job;
  if (mailbox.paused_reason) {
    return { mailboxId: mailbox.id, paused: true, error: mailbox.paused_reason };
  }
  if (mailbox.reconnect_needed_at) {
    return { mailboxId: mailbox.id, reconnectNeeded: true, error: reconnectNeededText(mailbox) };
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
  let accessToken: string | null = null;
  let session: ImapSession | null = null;
  try {
    credential = await mail.credential(mailbox.id);
    if (!credential) throw new Error("No password or token is stored for this mailbox");
    const provider = mailbox.oauth_provider;
    if (provider) {
      if (!deps.oauth) throw new OAuthNotConfiguredError(provider);
      accessToken = await deps.oauth.accessToken(
        { ...mailbox, oauth_provider: provider },
        credential,
      );
    }
    session = await deps.connect(mailbox, accessToken ?? credential, {
      maxMessageBytes: limits.maxMessageBytes,
      stopAt: window.stopAt,
      fetchTimeoutMs: limits.fetchSeconds * 1000,
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
        budget,
        deadline: window.deadline,
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
    const scrub = (text: string) =>
      withoutCredential(withoutCredential(text, credential), accessToken);
    const described = describeImportError(error, mailbox, credential);
    described.text = scrub(described.text);
    // The details the user's text leaves out, for the operator (never the credential).
    const code = (error as { code?: unknown })?.code;
    log.warn("Mailbox import failed", {
      run_id: runId,
      mailbox_id: mailbox.id,
      code: typeof code === "string" ? code : undefined,
      error: errorText(scrub(error instanceof Error ? error.message : String(error))),
    });
    if (mailbox.oauth_provider) deps.oauth?.forget(mailbox.id);
    if (error instanceof ReconnectNeededError && mailbox.oauth_provider && credential) {
      // Only if the refused token is still the stored one: a reconnect meanwhile stands.
      const marked = await mail.markReconnectNeeded(
        mailbox.id,
        await sha256Hex(credential),
        described.text,
      ).catch(() => false);
      if (marked) {
        return {
          mailboxId: mailbox.id,
          reconnectNeeded: true,
          error: described.text,
          commands: session?.commands,
        };
      }
    }
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
