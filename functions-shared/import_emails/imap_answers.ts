/**
 * The checks every IMAP answer passes before the importer uses it (imap_session.ts
 * applies them): the server is chosen by the user and may lie. Numbers are checked
 * before they are stored, and a chunk keeps one row per UID it asked for, each
 * within the byte bound.
 */
import type { BodyStructureNode } from "./bodystructure.ts";
import { ImapSessionError } from "./session_errors.ts";

export interface FolderStatus {
  uidValidity: number;
  /** The UID the next message will get; null when the server does not say. */
  uidNext: number | null;
  highestModseq: bigint | null;
  messages: number | null;
}

/** One message as fetched: the source is at most maxMessageBytes long. */
export interface FetchedMessage {
  uid: number;
  flags: string[];
  internalDate: Date | null;
  /** The whole message's size (RFC822.SIZE), as the server states it. */
  size: number | null;
  bodyStructure: BodyStructureNode | undefined;
  source: Uint8Array;
}

const MAX_UID = 4294967295; // UIDs and UIDVALIDITY are 32-bit (RFC 3501 2.3.1.1)
/** Rows a chunk's FETCH may send for UIDs not asked for before it is stopped. */
const MAX_UNREQUESTED_ROWS = 1_000;
const MAX_FLAGS = 100;

export const isUid = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_UID;
const countOrNull = (value: unknown, max = Number.MAX_SAFE_INTEGER) =>
  Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= max
    ? value as number
    : null;
/** folder_state.message_count is a Postgres integer: a bigger count would fail the batch. */
const MAX_MESSAGE_COUNT = 2 ** 31 - 1;

/** A STATUS answer checked: a UIDVALIDITY we can store, the rest dropped if absurd. */
export function checkedStatus(status: {
  uidValidity?: unknown;
  uidNext?: unknown;
  highestModseq?: unknown;
  messages?: unknown;
}): FolderStatus {
  const uidValidity = typeof status.uidValidity === "bigint"
    ? Number(status.uidValidity)
    : status.uidValidity;
  if (!isUid(uidValidity)) {
    throw new ImapSessionError("The mail server sent an invalid UIDVALIDITY");
  }
  const modseq = status.highestModseq;
  return {
    uidValidity,
    uidNext: isUid(status.uidNext) || status.uidNext === MAX_UID + 1
      ? status.uidNext as number
      : null,
    highestModseq: typeof modseq === "bigint" && modseq > 0n && modseq < 2n ** 63n ? modseq : null,
    messages: countOrNull(status.messages, MAX_MESSAGE_COUNT),
  };
}

/** SEARCH's UIDs above `afterUid`: valid, unique, ascending. */
export function uidsAbove(found: unknown, afterUid: number): number[] {
  if (!Array.isArray(found)) return [];
  const uids = new Set(found.filter((uid) => isUid(uid) && uid > afterUid) as number[]);
  return [...uids].sort((a, b) => a - b);
}

interface RawRow {
  uid?: unknown;
  flags?: unknown;
  internalDate?: unknown;
  size?: unknown;
  bodyStructure?: unknown;
  source?: unknown;
}

/**
 * Keeps the FETCH rows of a chunk that answer what was asked: one row per asked UID,
 * each source at most maxMessageBytes. Returns the kept rows in UID order.
 */
export class ChunkRows {
  readonly #wanted: Set<number>;
  readonly #kept = new Map<number, FetchedMessage>();
  #dropped = 0;
  constructor(uids: number[], private readonly maxMessageBytes: number) {
    this.#wanted = new Set(uids);
  }
  add(row: RawRow) {
    const uid = row.uid;
    if (!isUid(uid) || !this.#wanted.has(uid) || this.#kept.has(uid)) {
      if (++this.#dropped > MAX_UNREQUESTED_ROWS) {
        throw new ImapSessionError("The mail server sent messages that were not asked for");
      }
      return;
    }
    let source = row.source instanceof Uint8Array ? row.source : new Uint8Array(0);
    // A copy, so the oversized buffer is not kept alive by a view of it.
    if (source.length > this.maxMessageBytes) source = source.slice(0, this.maxMessageBytes);
    const date = row.internalDate instanceof Date || typeof row.internalDate === "string"
      ? new Date(row.internalDate)
      : null;
    const flags = row.flags instanceof Set || Array.isArray(row.flags) ? [...row.flags] : [];
    this.#kept.set(uid, {
      uid,
      flags: flags.filter((flag) => typeof flag === "string").slice(0, MAX_FLAGS),
      internalDate: date && !Number.isNaN(date.getTime()) ? date : null,
      size: countOrNull(row.size),
      bodyStructure: typeof row.bodyStructure === "object" && row.bodyStructure !== null
        ? row.bodyStructure as BodyStructureNode
        : undefined,
      source,
    });
  }
  rows(): FetchedMessage[] {
    return [...this.#kept.values()].sort((a, b) => a.uid - b.uid);
  }
}
