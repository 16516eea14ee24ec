/**
 * The real IMAP server of the local stack (Dovecot, local-stack/imap/dovecot.sh) for
 * integration tests: users, folders, mail, and an importer wired exactly as the
 * functions wire it, but with limits the test chooses.
 */
import { ImapFlow } from "imapflow";
import type postgres from "postgres";
import {
  createImportRunner,
  type ImportLimits,
} from "../../functions-shared/import_emails/import_run.ts";
import { openImapSession } from "../../functions-shared/import_emails/imap_session.ts";
import { createMailStore } from "../../functions-shared/import_emails/mail_store.ts";
import type { IsolateBudget } from "../../functions-shared/import_emails/isolate_budget.ts";
import { createMemoryLogger } from "../../functions-shared/platform/log.ts";
import { createRunStore } from "../../functions-shared/runs/run_store.ts";
import { imapPort, imapsPort, stateDir } from "../../local-stack/urls.ts";

const repo = new URL("../../", import.meta.url).pathname;
const dovecotScript = `${repo}local-stack/imap/dovecot.sh`;
export const dovecotState = `${stateDir}/dovecot`;
export const IMAP_PORT = imapPort;
export const IMAPS_PORT = imapsPort;
export const caPem = () => Deno.readTextFileSync(`${dovecotState}/ca.pem`);

async function run(args: string[], stdin?: Uint8Array): Promise<string> {
  const child = new Deno.Command(dovecotScript, {
    args,
    env: { DOVECOT_STATE_DIR: dovecotState },
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(stdin);
    await writer.close();
  }
  const output = await child.output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  if (output.code !== 0) throw new Error(`dovecot.sh ${args[0]} failed: ${text}`);
  return text;
}

export const doveadm = (...args: string[]) => run(["doveadm", ...args]);
export const startDovecot = () => run(["start", dovecotState]);
export const stopDovecot = () => run(["stop", dovecotState]);

/** A fresh IMAP user with a random name and password. */
export async function createImapUser(): Promise<{ username: string; password: string }> {
  const username = `u${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const password = `pw-${crypto.randomUUID()}`;
  await run(["add-user", username, password, dovecotState]);
  return { username, password };
}

/** Runs `task` on one plain IMAP connection as the user, then logs out. */
export async function withImapClient<T>(
  user: { username: string; password: string },
  task: (client: ImapFlow) => Promise<T>,
): Promise<T> {
  const client = new ImapFlow({
    host: "127.0.0.1",
    port: IMAP_PORT,
    secure: false,
    doSTARTTLS: false,
    auth: { user: user.username, pass: user.password },
    logger: false,
  });
  await client.connect();
  try {
    return await task(client);
  } finally {
    await client.logout();
  }
}

/** Appends raw messages over IMAP (one connection), creating the folder if needed. */
export function appendMessages(
  user: { username: string; password: string },
  folder: string,
  sources: (string | Uint8Array)[],
): Promise<void> {
  return withImapClient(user, async (client) => {
    if (folder !== "INBOX") await client.mailboxCreate(folder).catch(() => {});
    for (const source of sources) await client.append(folder, source as never);
  });
}

let counter = 0;
/** A plain RFC 822 message with a unique Message-ID. */
export function message(
  options: { subject?: string; body?: string; messageId?: string | null; extraHeaders?: string } =
    {},
) {
  counter += 1;
  const id = options.messageId === undefined
    ? `<${crypto.randomUUID()}@test.example>`
    : options.messageId;
  return [
    "From: Sender <sender@example.com>",
    "To: Receiver <receiver@example.com>",
    `Subject: ${options.subject ?? `Message ${counter}`}`,
    `Date: ${new Date(Date.UTC(2026, 10, 1, 0, 0, counter)).toUTCString()}`,
    ...(id ? [`Message-ID: ${id}`] : []),
    ...(options.extraHeaders ? [options.extraHeaders] : []),
    "Content-Type: text/plain; charset=utf-8",
    "",
    options.body ?? `Body of message ${counter}`,
    "",
  ].join("\r\n");
}

/** Adds a mailbox for the user as the user would: public.add_mailbox under their JWT claims. */
export async function addMailbox(
  sql: postgres.Sql,
  userId: string,
  imapUser: { username: string; password: string },
  options: { folders?: string[]; tls?: "tls" | "starttls" | "plain"; port?: number } = {},
): Promise<string> {
  const tls = options.tls ?? "tls";
  const port = options.port ?? (tls === "tls" ? IMAPS_PORT : IMAP_PORT);
  return await sql.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${
      JSON.stringify({ sub: userId, role: "authenticated" })
    }, true)`;
    await tx`set local role authenticated`;
    const [row] = await tx`
      select public.add_mailbox(
        p_host := ${tls === "tls" ? "localhost" : "127.0.0.1"}, p_port := ${port},
        p_username := ${imapUser.username}, p_credential := ${imapUser.password},
        p_tls_mode := ${tls}, p_folders := ${options.folders ?? ["INBOX"]}) as id`;
    return row.id as string;
  });
}

/** An accepted run, as cron-auto-sync or "sync now" leaves it for the importer. */
export async function acceptedRun(sql: postgres.Sql, userId: string): Promise<string> {
  const [run] = await sql`
    insert into auto_sync.runs (user_id, trigger, status, accepted_at)
    values (${userId}, 'manual', 'accepted', now()) returning id`;
  return run.id;
}

/**
 * The production import runner against the stack, with the test's limits.
 * `afterBatch` runs after each committed batch (e.g. to kill the server mid-import).
 */
export function importer(
  sql: postgres.Sql,
  limits: Partial<ImportLimits> = {},
  options: {
    afterBatch?: (batchNumber: number) => Promise<void>;
    trustTestCa?: boolean;
    allowPrivateHosts?: boolean;
    allowPlaintext?: boolean;
    shutdown?: AbortSignal;
    /** The function instance's budget; a fresh one with the defaults when not given. */
    isolate?: IsolateBudget;
  } = {},
) {
  const log = createMemoryLogger();
  const mail = createMailStore(sql);
  let batches = 0;
  const storeBatch = mail.storeBatch;
  mail.storeBatch = async (...args) => {
    const result = await storeBatch(...args);
    await options.afterBatch?.(++batches);
    return result;
  };
  const runner = createImportRunner({
    store: createRunStore(sql),
    mail,
    log,
    connect: (mailbox, credential, bounds) =>
      openImapSession(mailbox, credential, {
        ...bounds,
        caPem: options.trustTestCa === false ? undefined : caPem(),
        allowPrivateHosts: options.allowPrivateHosts ?? true, // the test server is on loopback
        allowPlaintext: options.allowPlaintext,
      }),
    limits,
    shutdown: options.shutdown,
    isolate: options.isolate,
  });
  return { log, runner };
}

/** Runs one import for the user and returns the finished run row. */
export async function importOnce(
  sql: postgres.Sql,
  userId: string,
  limits: Partial<ImportLimits> = {},
) {
  const runId = await acceptedRun(sql, userId);
  await importer(sql, limits).runner({ runId, userId });
  const [run] = await sql`select * from auto_sync.runs where id = ${runId}`;
  return run;
}
