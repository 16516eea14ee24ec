/**
 * Incremental import of one folder:
 *   STATUS first: unchanged UIDVALIDITY and no UID above the last imported one
 *   -> done, no SELECT, no FETCH. A new UIDVALIDITY -> reset and re-import (rows are
 *   re-mapped by message key, not duplicated). Otherwise the UIDs above the last
 *   one, fetched in small chunks, each chunk stored with the folder state in one
 *   transaction.
 * Each chunk is drained completely before the next starts (ImapSession.fetchChunk),
 * and every message source is cut at a byte bound, so a huge message can never
 * exhaust memory.
 */
import { safeLine } from "./safe_text.ts";
import { attachmentsFrom } from "./bodystructure.ts";
import type { FetchedMessage } from "./imap_answers.ts";
import { ImapSessionError } from "./session_errors.ts";
import type { ImapSession } from "./imap_session.ts";
import type { EmailRecord, FolderState, Mailbox, MailStore } from "./mail_store.ts";
import { parseMessage } from "./message_parser.ts";
import type { ChunkBudget } from "./instance_admission.ts";

/** The run's fixed bounds on what one message and one chunk may cost. */
export interface ChunkLimits {
  maxBodyChars: number;
  /** Messages per FETCH and per database transaction. */
  chunkSize: number;
}

export interface FolderSyncOptions {
  session: ImapSession;
  store: MailStore;
  mailbox: Mailbox;
  folder: string;
  /** What the database knows of the folder; undefined for its first import. */
  state: FolderState | undefined;
  limits: ChunkLimits;
  /**
   * What each chunk may ask for, charged for what arrives (instance_admission.ts); it
   * also says when the run must yield its slot at a chunk boundary.
   */
  budget: ChunkBudget;
  /** Unix ms after which no new chunk starts. */
  deadline: number;
  now: () => number;
  /** Aborted when the function instance is going away: no new chunk starts. */
  stop?: AbortSignal;
}

/** Messages counted by a sync: one folder's, or a run's summed over its folders. */
export interface MessageCounts {
  /** UIDs asked for (FETCH); what did not arrive went back to the budget. */
  requested: number;
  /** Messages the server sent (what the instance's budget is charged). */
  fetched: number;
  inserted: number;
  remapped: number;
  duplicates: number;
  bytes: number;
}

export const noMessages = (): MessageCounts => ({
  requested: 0,
  fetched: 0,
  inserted: 0,
  remapped: 0,
  duplicates: 0,
  bytes: 0,
});

/** What one folder's sync did, counted up to where it stopped. */
export interface FolderResult extends MessageCounts {
  /** The folder's UIDVALIDITY changed and its state was reset. */
  reset: boolean;
  /** UIDs remain for a next run (budget or deadline reached, or the run yielded). */
  hasMore: boolean;
  /** STATUS alone showed nothing new. */
  unchanged: boolean;
  /** Why the sync stopped early; what was counted above is committed. */
  error?: unknown;
}

async function toRecord(message: FetchedMessage, limits: ChunkLimits): Promise<EmailRecord> {
  const { source } = message;
  const parsed = await parseMessage(source, { maxBodyChars: limits.maxBodyChars });
  return {
    ...parsed,
    uid: message.uid,
    internal_date: message.internalDate?.toISOString() ?? null,
    flags: message.flags.map((flag) => safeLine(flag, 200)),
    size_bytes: message.size ?? source.length,
    source_truncated: (message.size ?? 0) > source.length,
    attachments: attachmentsFrom(message.bodyStructure),
  };
}

/**
 * A promise we await later: a failure meanwhile must not count as unhandled (Deno
 * would end the process); awaiting it still throws.
 */
function inFlight<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/** Syncs one folder. Never throws: a failure is returned with the counts up to it. */
export async function syncFolder(options: FolderSyncOptions): Promise<FolderResult> {
  const result: FolderResult = {
    ...noMessages(),
    reset: false,
    hasMore: false,
    unchanged: false,
  };
  try {
    await syncInto(result, options);
  } catch (error) {
    result.error = error;
  }
  return result;
}

async function syncInto(result: FolderResult, options: FolderSyncOptions): Promise<void> {
  const { session, store, mailbox, folder, state, limits } = options;
  const status = await session.status(folder);
  const { uidValidity } = status;
  const highestModseq = status.highestModseq;
  const messageCount = status.messages;
  let lastUid = state?.last_uid ?? 0;

  if (state && state.uid_validity !== uidValidity) {
    await store.resetFolder(mailbox.id, folder, uidValidity);
    result.reset = true;
    lastUid = 0;
  } else if (state && status.uidNext !== null && status.uidNext - 1 <= lastUid) {
    await store.touchFolder(mailbox.id, folder, { uidValidity, highestModseq, messageCount });
    result.unchanged = true;
    return;
  }

  const listed = await session.newUids(folder, lastUid);
  if (listed.uidValidity !== uidValidity) {
    // STATUS and EXAMINE disagree: UIDs could land under the wrong UIDVALIDITY.
    throw new ImapSessionError("The mail server sent two different UIDVALIDITY values");
  }
  const { uids } = listed;
  options.budget.listed(uids.length);
  if (uids.length === 0) {
    await store.touchFolder(mailbox.id, folder, { uidValidity, highestModseq, messageCount });
    return;
  }
  // Three stages overlap: while chunk k is parsed here, the server is already sending
  // chunk k+1 and Postgres is writing chunk k-1. Writes stay in order, so the folder
  // state never runs ahead of the messages it covers.
  let offset = 0;
  const nextChunk = (): number[] | null => {
    if (
      offset >= uids.length || options.now() >= options.deadline || options.stop?.aborted ||
      options.budget.yieldTurn()
    ) return null;
    const allowed = options.budget.take(Math.min(limits.chunkSize, uids.length - offset));
    if (allowed <= 0) return null;
    const chunk = uids.slice(offset, offset + allowed);
    offset += chunk.length;
    result.requested += chunk.length;
    return chunk;
  };
  let fetching: Promise<FetchedMessage[]> | null = null;
  let writing: Promise<void> | null = null;
  /** The chunk asked for whose answer is not charged yet (given back on an error). */
  let unsettled: number[] | null = null;
  try {
    let next = nextChunk();
    unsettled = next;
    fetching = next && inFlight(session.fetchChunk(folder, next));
    while (next && fetching) {
      const current = next;
      const fetched = await fetching;
      unsettled = null;
      // Charged for what arrived; the UIDs the server did not send go back.
      options.budget.settle(current.length, {
        messages: fetched.length,
        bytes: fetched.reduce((sum, message) => sum + message.source.length, 0),
      });
      next = nextChunk();
      unsettled = next;
      fetching = next && inFlight(session.fetchChunk(folder, next));
      const records: EmailRecord[] = [];
      let bytes = 0;
      for (let i = 0; i < fetched.length; i++) {
        const message = fetched[i];
        if (message.uid <= lastUid) continue;
        records.push(await toRecord(message, limits));
        bytes += message.source.length;
        // Parsed: up to 1 MiB that need not wait for the write.
        fetched[i] = { ...message, source: new Uint8Array(0) };
      }
      const fetchedCount = fetched.length;
      const done = current[current.length - 1] === uids[uids.length - 1];
      const progress = {
        uidValidity,
        lastUid: current[current.length - 1],
        // Only a fully imported folder may claim its HIGHESTMODSEQ.
        highestModseq: done ? highestModseq : null,
        messageCount: done ? messageCount : null,
      };
      lastUid = progress.lastUid;
      if (writing) await writing;
      writing = inFlight(
        store.storeBatch(mailbox.id, folder, records, progress).then((stored) => {
          result.fetched += fetchedCount;
          result.bytes += bytes;
          result.inserted += stored.inserted;
          result.remapped += stored.remapped;
          result.duplicates += stored.duplicates;
        }),
      );
    }
    await writing;
    writing = null;
    result.hasMore = lastUid < uids[uids.length - 1];
  } finally {
    // On an error, never leave a FETCH or a write running behind the caller (the
    // error that got us here is the one to report).
    await fetching?.catch(() => {});
    await writing?.catch(() => {});
    if (unsettled) options.budget.settle(unsettled.length, { messages: 0, bytes: 0 });
  }
}
