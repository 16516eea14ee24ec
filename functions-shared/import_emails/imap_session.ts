/**
 * One IMAP connection for one mailbox, and the only module that speaks IMAP
 * (imapflow). It offers what a folder sync needs: a folder's STATUS, the UIDs above
 * the last imported one, and one chunk of messages fetched within a byte bound.
 *
 * TLS is the default and always verified; STARTTLS or plain only when the mailbox
 * row says so. A private CA (a self-hosted server, the test server) is trusted
 * through IMAP_TLS_CA, never by turning verification off. The host must pass
 * host_policy.ts first. Counts the commands it sends, for tests and run stats.
 */
import { ImapFlow } from "imapflow";
import { isIP } from "node:net";
import type { BodyStructureNode } from "./bodystructure.ts";
import { resolveMailboxHost } from "./host_policy.ts";
import type { Mailbox } from "./mail_store.ts";

export interface ImapSessionOptions {
  /** Bytes fetched of each message's source (BODY.PEEK[]<0.n>). */
  maxMessageBytes: number;
  /** Extra CA certificate(s), PEM, trusted besides the system store. */
  caPem?: string;
  /** Allow loopback, private and link-local addresses (self-hosted servers, tests). */
  allowPrivateHosts?: boolean;
  connectTimeoutMs?: number;
  socketTimeoutMs?: number;
}

export interface FolderStatus {
  uidValidity: number;
  /** The UID the next message will get; null when the server does not say. */
  uidNext: number | null;
  highestModseq: bigint | null;
  messages: number | null;
}

/** The UIDs above a given one, with the UIDVALIDITY they belong to. */
export interface NewUids {
  uidValidity: number;
  /** Ascending, each above the given UID. */
  uids: number[];
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

export interface ImapSession {
  /** How many times each IMAP command was sent, e.g. { STATUS: 2, FETCH: 1 }. */
  readonly commands: Record<string, number>;
  /** STATUS of a folder without opening it. Throws when the folder does not exist. */
  status(folder: string): Promise<FolderStatus>;
  /** Opens the folder read-only and lists the UIDs above `afterUid`. */
  newUids(folder: string, afterUid: number): Promise<NewUids>;
  /** Fetches these UIDs of the folder, drained completely, in ascending UID order. */
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

export async function openImapSession(
  mailbox: Mailbox,
  credential: string,
  options: ImapSessionOptions,
): Promise<ImapSession> {
  const commands: Record<string, number> = {};
  const count = (entry: { src?: string; msg?: string }) => {
    const match = entry?.src === "c" && typeof entry.msg === "string"
      ? entry.msg.match(COMMAND_LINE)
      : null;
    if (match) commands[match[1]] = (commands[match[1]] ?? 0) + 1;
  };
  const ignore = () => {};
  // Connect to the address that passed the host policy; TLS still checks the name.
  const address = await resolveMailboxHost(mailbox.host, {
    allowPrivate: options.allowPrivateHosts ?? false,
  });
  const client = new ImapFlow({
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
    // imapflow logs protocol lines at debug level (credentials masked); we only count.
    logger: { debug: count, info: ignore, warn: ignore, error: ignore } as never,
    disableAutoIdle: true,
    connectionTimeout: options.connectTimeoutMs ?? 15_000,
    greetingTimeout: options.connectTimeoutMs ?? 15_000,
    socketTimeout: options.socketTimeoutMs ?? 60_000,
  });
  client.on("error", ignore); // socket errors also reject the pending command
  await client.connect();
  const query = fetchQuery(options.maxMessageBytes);

  return {
    commands,
    async status(folder) {
      const status = await client.status(folder, {
        uidValidity: true,
        uidNext: true,
        highestModseq: true,
        messages: true,
      });
      if (!status) throw new Error(`Folder "${folder}" does not exist on the server`);
      return {
        uidValidity: Number(status.uidValidity),
        uidNext: status.uidNext ?? null,
        highestModseq: status.highestModseq ?? null,
        messages: status.messages ?? null,
      };
    },
    async newUids(folder, afterUid) {
      const lock = await client.getMailboxLock(folder, { readOnly: true });
      try {
        const uidValidity = Number(client.mailbox ? client.mailbox.uidValidity : NaN);
        const found = await client.search({ uid: `${afterUid + 1}:*` }, { uid: true });
        // `*` always matches the newest message, even below afterUid.
        const uids = (found || []).filter((uid) => uid > afterUid).sort((a, b) => a - b);
        return { uidValidity, uids };
      } finally {
        lock.release();
      }
    },
    async fetchChunk(folder, uids) {
      const lock = await client.getMailboxLock(folder, { readOnly: true });
      try {
        const fetched: FetchedMessage[] = [];
        for await (const message of client.fetch(uids.join(","), query, { uid: true })) {
          const internalDate = message.internalDate ? new Date(message.internalDate) : null;
          fetched.push({
            uid: message.uid,
            flags: [...(message.flags ?? [])],
            internalDate: internalDate && !Number.isNaN(internalDate.getTime())
              ? internalDate
              : null,
            size: message.size ?? null,
            bodyStructure: message.bodyStructure as BodyStructureNode | undefined,
            source: message.source ?? new Uint8Array(0),
          });
        }
        return fetched;
      } finally {
        lock.release();
      }
    },
    async close() {
      try {
        await client.logout();
      } catch {
        client.close();
      }
    },
  };
}
