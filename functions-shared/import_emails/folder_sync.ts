/**
 * Incremental import of one folder:
 *   STATUS first: unchanged UIDVALIDITY and no UID above the last imported one
 *   -> done, no SELECT, no FETCH. A new UIDVALIDITY -> reset and re-import (rows are
 *   re-mapped by message key, not duplicated). Otherwise SEARCH UID last+1:*, drop
 *   any uid <= last (`*` always matches the newest message), and FETCH in small
 *   chunks, each chunk stored with the folder state in one transaction.
 * Each FETCH is drained completely into an array (no IMAP command inside a
 * `for await` over fetch; the next chunk's FETCH is queued behind it), and every
 * message source is cut at a byte bound, so a huge message can never exhaust memory.
 */
import type { ImapSession } from "./imap_session.ts";
import { attachmentsFrom, type BodyStructureNode } from "./bodystructure.ts";
import type { EmailRecord, FolderState, Mailbox, MailStore } from "./mail_store.ts";
import { parseMessage } from "./message_parser.ts";

export interface ImportBudget {
  /** Messages this run may still fetch (shared across folders and mailboxes). */
  remainingMessages: number;
  /** Unix ms after which no new chunk starts. */
  deadline: number;
  now: () => number;
  maxMessageBytes: number;
  maxBodyChars: number;
  chunkSize: number;
}

export interface ImportTally {
  fetched: number;
  inserted: number;
  remapped: number;
  duplicates: number;
  bytes: number;
  resets: string[];
}

export interface FolderOutcome {
  hasMore: boolean;
  unchanged: boolean;
}

interface FetchedMessage {
  uid: number;
  flags?: Set<string>;
  internalDate?: Date | string;
  size?: number;
  bodyStructure?: BodyStructureNode;
  source?: Uint8Array;
}

async function toRecord(message: FetchedMessage, budget: ImportBudget): Promise<EmailRecord> {
  const source = message.source ?? new Uint8Array(0);
  const parsed = await parseMessage(source, { maxBodyChars: budget.maxBodyChars });
  const internalDate = message.internalDate ? new Date(message.internalDate) : null;
  return {
    ...parsed,
    uid: message.uid,
    internal_date: internalDate && !Number.isNaN(internalDate.getTime())
      ? internalDate.toISOString()
      : null,
    flags: [...(message.flags ?? [])].map((flag) =>
      flag.replaceAll("\u0000", "").slice(0, 200).toWellFormed()
    ),
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

/** What the importer fetches of each message (the import benchmark's baseline fetches the same). */
export function fetchQuery(maxMessageBytes: number) {
  return {
    uid: true,
    flags: true,
    internalDate: true,
    size: true,
    bodyStructure: true,
    source: { start: 0, maxLength: maxMessageBytes },
  };
}

/**
 * One chunk's FETCH, drained into an array. It starts at once (the command goes out
 * before this returns), so the server works while the caller parses the previous chunk.
 */
async function fetchChunk(
  session: ImapSession,
  uids: number[],
  budget: ImportBudget,
): Promise<FetchedMessage[]> {
  const fetched: FetchedMessage[] = [];
  for await (
    const message of session.client.fetch(uids.join(","), fetchQuery(budget.maxMessageBytes), {
      uid: true,
    })
  ) {
    fetched.push(message as FetchedMessage);
  }
  return fetched;
}

export async function syncFolder(
  session: ImapSession,
  store: MailStore,
  target: { mailbox: Mailbox; folder: string; state: FolderState | undefined },
  budget: ImportBudget,
  tally: ImportTally,
): Promise<FolderOutcome> {
  const { client } = session;
  const { mailbox, folder } = target;
  const status = await client.status(folder, {
    uidValidity: true,
    uidNext: true,
    highestModseq: true,
    messages: true,
  });
  if (!status) throw new Error(`Folder "${folder}" does not exist on the server`);
  const uidValidity = Number(status.uidValidity);
  const highestModseq = status.highestModseq ?? null;
  const messageCount = status.messages ?? null;
  let lastUid = target.state?.last_uid ?? 0;

  if (target.state && target.state.uid_validity !== uidValidity) {
    await store.resetFolder(mailbox.id, folder, uidValidity);
    tally.resets.push(folder);
    lastUid = 0;
  } else if (target.state && status.uidNext !== undefined && status.uidNext - 1 <= lastUid) {
    await store.touchFolder(mailbox.id, folder, { uidValidity, highestModseq, messageCount });
    return { hasMore: false, unchanged: true };
  }

  const lock = await client.getMailboxLock(folder, { readOnly: true });
  try {
    const found = await client.search({ uid: `${lastUid + 1}:*` }, { uid: true });
    const uids = (found || []).filter((uid) => uid > lastUid).sort((a, b) => a - b);
    if (uids.length === 0) {
      await store.touchFolder(mailbox.id, folder, { uidValidity, highestModseq, messageCount });
      return { hasMore: false, unchanged: false };
    }
    // Three stages overlap: while chunk k is parsed here, the server is already sending
    // chunk k+1 and Postgres is writing chunk k-1. Writes stay in order, so the folder
    // state never runs ahead of the messages it covers.
    let offset = 0;
    const nextChunk = (): number[] | null => {
      if (
        offset >= uids.length || budget.remainingMessages <= 0 || budget.now() >= budget.deadline
      ) return null;
      const chunk = uids.slice(
        offset,
        offset + Math.min(budget.chunkSize, budget.remainingMessages),
      );
      offset += chunk.length;
      budget.remainingMessages -= chunk.length;
      return chunk;
    };
    let fetching: Promise<FetchedMessage[]> | null = null;
    let writing: Promise<void> | null = null;
    try {
      let next = nextChunk();
      fetching = next && inFlight(fetchChunk(session, next, budget));
      while (next && fetching) {
        const current = next;
        const fetched = await fetching;
        next = nextChunk();
        fetching = next && inFlight(fetchChunk(session, next, budget));
        const records: EmailRecord[] = [];
        for (const message of fetched) {
          if (message.uid <= lastUid) continue;
          records.push(await toRecord(message, budget));
          tally.bytes += message.source?.length ?? 0;
          message.source = undefined; // parsed: up to 1 MiB that need not wait for the write
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
          store.storeBatch(mailbox.id, folder, records, progress).then((result) => {
            tally.fetched += fetchedCount;
            tally.inserted += result.inserted;
            tally.remapped += result.remapped;
            tally.duplicates += result.duplicates;
          }),
        );
      }
      await writing;
      writing = null;
      return { hasMore: lastUid < uids[uids.length - 1], unchanged: false };
    } finally {
      // On an error, never leave a FETCH or a write running behind the caller (the
      // error that got us here is the one to report).
      await fetching?.catch(() => {});
      await writing?.catch(() => {});
    }
  } finally {
    lock.release();
  }
}
