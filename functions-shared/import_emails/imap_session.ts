/**
 * One IMAP connection for one mailbox (imapflow). TLS is the default and always
 * verified; STARTTLS or plain only when the mailbox row says so. A private CA (a
 * self-hosted server, the test server) is trusted through IMAP_TLS_CA, never by
 * turning verification off. The host must pass host_policy.ts first. Counts the
 * commands it sends, for tests and run stats.
 */
import { ImapFlow } from "imapflow";
import { isIP } from "node:net";
import { resolveMailboxHost } from "./host_policy.ts";
import type { Mailbox } from "./mail_store.ts";

export interface ImapSessionOptions {
  /** Extra CA certificate(s), PEM, trusted besides the system store. */
  caPem?: string;
  /** Allow loopback, private and link-local addresses (self-hosted servers, tests). */
  allowPrivateHosts?: boolean;
  connectTimeoutMs?: number;
  socketTimeoutMs?: number;
}

export interface ImapSession {
  client: ImapFlow;
  /** How many times each IMAP command was sent, e.g. { STATUS: 2, FETCH: 1 }. */
  commands: Record<string, number>;
  close(): Promise<void>;
}

const COMMAND_LINE = /^[A-Za-z0-9.]+ (?:UID )?([A-Z]+)/;

export async function openImapSession(
  mailbox: Mailbox,
  credential: string,
  options: ImapSessionOptions = {},
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
  return {
    client,
    commands,
    async close() {
      try {
        await client.logout();
      } catch {
        client.close();
      }
    },
  };
}
