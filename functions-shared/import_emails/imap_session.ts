/**
 * One IMAP connection for one mailbox, and the only module that speaks IMAP
 * (imapflow). It offers what a folder sync needs: a folder's STATUS, the UIDs above
 * the last imported one, and one chunk of messages fetched within a byte bound.
 *
 * Every answer of the server is hostile input: imapflow's literal, line, response
 * and token limits are set from the byte bound, rows for UIDs that were not asked
 * for (or asked for once and sent twice) are dropped, numbers are checked before
 * use, a flood of answers ends the session, one FETCH has a time cap, and the session
 * is closed at the run's hard stop whatever the server is doing (a slow drip never
 * holds a run open).
 *
 * TLS is the default and always verified; STARTTLS or plain only when the mailbox
 * row says so. A private CA (a self-hosted server, the test server) is trusted
 * through IMAP_TLS_CA, never by turning verification off. The host must pass
 * host_policy.ts first. Counts the commands it sends, for tests and run stats.
 */
import { ImapFlow } from "imapflow";
import { isIP } from "node:net";
import {
  checkedStatus,
  ChunkRows,
  type FetchedMessage,
  type FolderStatus,
  isUid,
  uidsAbove,
} from "./imap_answers.ts";
import { resolveMailboxHost } from "./host_policy.ts";
import { ImapSessionError } from "./session_errors.ts";
import type { Mailbox } from "./mail_store.ts";

export interface ImapSessionOptions {
  /** Bytes fetched of each message's source (BODY.PEEK[]<0.n>). */
  maxMessageBytes: number;
  /** Extra CA certificate(s), PEM, trusted besides the system store. */
  caPem?: string;
  /** Allow loopback, private and link-local addresses (self-hosted servers, tests). */
  allowPrivateHosts?: boolean;
  /**
   * Allow tls_mode 'plain' (password in cleartext). Default: only where private
   * hosts are allowed (a self-hosted server on the operator's own network).
   */
  allowPlaintext?: boolean;
  connectTimeoutMs?: number;
  socketTimeoutMs?: number;
  /** Unix ms at which the session is closed, whatever it is doing. */
  stopAt?: number;
  /** One FETCH (a chunk) taking longer than this ends the session (a drip holds no run). */
  fetchTimeoutMs?: number;
}

/** The UIDs above a given one, with the UIDVALIDITY they belong to. */
export interface NewUids {
  uidValidity: number;
  /** Ascending, each above the given UID. */
  uids: number[];
}

export type { FetchedMessage, FolderStatus };
export { ImapSessionError };

export interface ImapSession {
  /** How many times each IMAP command was sent, e.g. { STATUS: 2, FETCH: 1 }. */
  readonly commands: Record<string, number>;
  /** STATUS of a folder without opening it. Throws when the folder does not exist. */
  status(folder: string): Promise<FolderStatus>;
  /** Opens the folder read-only and lists the UIDs above `afterUid`. */
  newUids(folder: string, afterUid: number): Promise<NewUids>;
  /**
   * Fetches these UIDs (listed by newUids under the same UIDVALIDITY), drained
   * completely: one row per UID the server has, in ascending UID order.
   */
  fetchChunk(folder: string, uids: number[]): Promise<FetchedMessage[]>;
  close(): Promise<void>;
}

/** What the importer fetches of each message (the import benchmark's baseline fetches the same). */
function fetchQuery(maxMessageBytes: number) {
  return {
    uid: true,
    flags: true,
    internalDate: true,
    size: true,
    bodyStructure: true,
    source: { start: 0, maxLength: maxMessageBytes },
  };
}

const COMMAND_LINE = /^[A-Za-z0-9.]+ (?:UID )?([A-Z]+)/;
/** Non-FETCH answers a session takes (a legitimate one needs a few dozen). */
const MAX_ANSWERS = 10_000;
/** Tokens in one answer: a BODYSTRUCTURE of hundreds of parts needs a few thousand. */
const MAX_RESPONSE_TOKENS = 50_000;
/** Room in one answer besides the message source: BODYSTRUCTURE, flags, and SEARCH answers. */
const ANSWER_OVERHEAD_BYTES = 4 * 1024 * 1024;
const LIMIT_CODES = new Set([
  "LiteralTooLarge",
  "LineTooLarge",
  "ResponseTooLarge",
  "TooManyTokens",
]);

export async function openImapSession(
  mailbox: Mailbox,
  credential: string,
  options: ImapSessionOptions,
): Promise<ImapSession> {
  const commands: Record<string, number> = {};
  /** Why this session was ended from our side; then every call fails with it. */
  let broken: ImapSessionError | null = null;
  let answers = 0;
  const end = (reason: string) => {
    if (broken) return;
    broken = new ImapSessionError(reason);
    setTimeout(() => client.close(), 0); // not from inside imapflow's own call
  };
  // imapflow logs each command it sends, and each answer but FETCH rows, at debug
  // level (credentials masked): we count both and print neither.
  const count = (entry: { src?: string; msg?: string }) => {
    if (entry?.src === "s" && ++answers > MAX_ANSWERS) {
      end("The mail server sent too many answers");
    }
    const match = entry?.src === "c" && typeof entry.msg === "string"
      ? entry.msg.match(COMMAND_LINE)
      : null;
    if (match) commands[match[1]] = (commands[match[1]] ?? 0) + 1;
  };
  const ignore = () => {};
  /** imapflow's size limits end the connection; say which bound the server broke. */
  const endOnLimit = (error: unknown) => {
    if (LIMIT_CODES.has((error as { code?: string })?.code ?? "")) {
      end("The mail server sent an answer larger than the importer accepts");
    }
  };
  // imapflow skips an answer it cannot parse (logged as an error): a row of the
  // chunk would silently be missing, and the folder state would move past it.
  const unreadable = (entry: { src?: string }) => {
    if (entry?.src === "s") end("The mail server sent an answer the importer cannot read");
  };
  if (mailbox.tls_mode === "plain" && !(options.allowPlaintext ?? options.allowPrivateHosts)) {
    throw new ImapSessionError(
      "Plain-text IMAP is not allowed for this server: choose TLS or STARTTLS",
    );
  }
  // Connect to the address that passed the host policy; TLS still checks the name.
  const address = await resolveMailboxHost(mailbox.host, {
    allowPrivate: options.allowPrivateHosts ?? false,
  });
  const maxLiteralSize = Math.max(options.maxMessageBytes, 64 * 1024);
  const client: ImapFlow = new ImapFlow({
    host: address,
    port: mailbox.port,
    secure: mailbox.tls_mode === "tls",
    doSTARTTLS: mailbox.tls_mode === "starttls"
      ? true
      : mailbox.tls_mode === "plain"
      ? false
      : undefined,
    auth: mailbox.auth_kind === "oauth2"
      ? { user: mailbox.username, accessToken: credential }
      : { user: mailbox.username, pass: credential },
    tls: {
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
      servername: isIP(mailbox.host) ? undefined : mailbox.host,
      ...(options.caPem ? { ca: [options.caPem] } : {}),
    },
    logger: { debug: count, info: ignore, warn: ignore, error: unreadable } as never,
    disableAutoIdle: true,
    connectionTimeout: options.connectTimeoutMs ?? 15_000,
    greetingTimeout: options.connectTimeoutMs ?? 15_000,
    socketTimeout: options.socketTimeoutMs ?? 60_000,
    // imapflow's defaults allow 1 GiB literals and lines and a million tokens.
    maxLiteralSize,
    maxLineLength: maxLiteralSize + ANSWER_OVERHEAD_BYTES,
    maxResponseSize: maxLiteralSize + ANSWER_OVERHEAD_BYTES,
    maxResponseTokens: MAX_RESPONSE_TOKENS,
  });
  // Socket errors also reject the pending command; a broken size limit is named.
  client.on("error", endOnLimit);
  const stopTimer = options.stopAt === undefined ? undefined : setTimeout(
    () => end("The mail server did not finish answering within the run's time limit"),
    Math.max(0, options.stopAt - Date.now()),
  );
  /** Runs one call; once the session was ended, its reason is the error. */
  const guarded = async <T>(call: () => Promise<T>): Promise<T> => {
    if (broken) throw broken;
    let result: T;
    try {
      result = await call();
    } catch (error) {
      endOnLimit(error);
      throw broken ?? error;
    }
    // An answer that ended the session taints what the call returned.
    if (broken) throw broken;
    return result;
  };
  try {
    await guarded(() => client.connect());
  } catch (error) {
    clearTimeout(stopTimer);
    client.close();
    throw error;
  }
  const query = fetchQuery(options.maxMessageBytes);
  /** The UIDVALIDITY each folder had when its UIDs were listed. */
  const listedValidity = new Map<string, number>();
  const openedValidity = () => Number(client.mailbox ? client.mailbox.uidValidity : NaN);

  return {
    commands,
    status: (folder) =>
      guarded(async () => {
        const status = await client.status(folder, {
          uidValidity: true,
          uidNext: true,
          highestModseq: true,
          messages: true,
        });
        if (!status) throw new Error(`Folder "${folder}" does not exist on the server`);
        return checkedStatus(status);
      }),
    newUids: (folder, afterUid) =>
      guarded(async () => {
        const lock = await client.getMailboxLock(folder, { readOnly: true });
        try {
          const uidValidity = openedValidity();
          if (!isUid(uidValidity)) {
            throw new ImapSessionError("The mail server sent an invalid UIDVALIDITY");
          }
          const found = await client.search({ uid: `${afterUid + 1}:*` }, { uid: true });
          listedValidity.set(folder, uidValidity);
          // `*` always matches the newest message, even below afterUid.
          return { uidValidity, uids: uidsAbove(found, afterUid) };
        } finally {
          lock.release();
        }
      }),
    fetchChunk: (folder, uids) =>
      guarded(async () => {
        const lock = await client.getMailboxLock(folder, { readOnly: true });
        try {
          // UIDs only mean something under the UIDVALIDITY they were listed with.
          if (openedValidity() !== listedValidity.get(folder)) {
            throw new ImapSessionError(
              "The mail server changed the folder's UIDVALIDITY during the import",
            );
          }
          const rows = new ChunkRows(uids, options.maxMessageBytes);
          const capMs = options.fetchTimeoutMs;
          const cap = capMs === undefined ? undefined : setTimeout(
            () => end(`The mail server did not answer a FETCH within ${Math.ceil(capMs / 1000)} s`),
            capMs,
          );
          try {
            for await (const row of client.fetch(uids.join(","), query, { uid: true })) {
              rows.add(row);
            }
          } finally {
            clearTimeout(cap);
          }
          if (openedValidity() !== listedValidity.get(folder)) {
            throw new ImapSessionError(
              "The mail server changed the folder's UIDVALIDITY during the import",
            );
          }
          return rows.rows();
        } finally {
          lock.release();
        }
      }),
    async close() {
      clearTimeout(stopTimer);
      if (!broken) {
        // A polite LOGOUT, but a server that does not answer it does not hold us.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          client.logout().catch(() => {}),
          new Promise((resolve) => timer = setTimeout(resolve, 2_000)),
        ]);
        clearTimeout(timer);
      }
      client.close();
    },
  };
}
