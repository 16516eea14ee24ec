/**
 * The importer against a real IMAP server (Dovecot) and the real database:
 * incremental, idempotent, resumable, bounded, and honest about failures.
 */
import assert from "node:assert/strict";
import { isolateShutdownSignal } from "../../functions-shared/import_emails/isolate_shutdown.ts";
import { connect, createUser } from "../support/local_stack.ts";
import {
  acceptedRun,
  addMailbox,
  appendMessages,
  createImapUser,
  doveadm,
  IMAP_PORT,
  importer,
  importOnce,
  message,
  startDovecot,
  stopDovecot,
} from "../support/imap.ts";

const sql = connect();

async function setup(options: { folders?: string[]; tls?: "tls" | "starttls" | "plain" } = {}) {
  const userId = await createUser(sql, "mail");
  const imapUser = await createImapUser();
  const mailboxId = await addMailbox(sql, userId, imapUser, options);
  return { userId, imapUser, mailboxId };
}

const emailsOf = (mailboxId: string) =>
  sql`select folder, uid_validity, uid, message_id, subject from public.emails where mailbox_id = ${mailboxId} order by folder, uid`;

Deno.test("first sync imports everything; the next imports only what is new; nothing new means no FETCH", async () => {
  const { userId, imapUser, mailboxId } = await setup();
  await appendMessages(imapUser, "INBOX", [message(), message(), message()]);

  const first = await importOnce(sql, userId);
  assert.equal(first.status, "succeeded", first.error);
  assert.equal(first.details.inserted, 3);
  assert.equal((await emailsOf(mailboxId)).length, 3);

  await appendMessages(imapUser, "INBOX", [
    message({ subject: "new one" }),
    message({ subject: "new two" }),
  ]);
  const second = await importOnce(sql, userId);
  assert.equal(second.status, "succeeded");
  assert.equal(second.details.fetched, 2, "only the two new messages are fetched");
  assert.equal(second.details.inserted, 2);
  const subjects = (await emailsOf(mailboxId)).map((row) => row.subject);
  assert.deepEqual(subjects.slice(-2), ["new one", "new two"]);

  const third = await importOnce(sql, userId);
  assert.equal(third.status, "succeeded");
  assert.equal(third.details.fetched, 0);
  const commands = third.details.mailboxes[0].imap_commands;
  assert.equal(commands.STATUS, 1, JSON.stringify(commands));
  for (const command of ["FETCH", "SEARCH", "SELECT", "EXAMINE"]) {
    assert.equal(commands[command], undefined, `${command} sent: ${JSON.stringify(commands)}`);
  }
});

Deno.test("a new UIDVALIDITY re-imports the folder without duplicate rows and records the reset", async () => {
  const { userId, imapUser, mailboxId } = await setup({ folders: ["INBOX", "Archive"] });
  const archived = [
    message({ subject: "a1" }),
    message({ subject: "a2" }),
    message({ messageId: null, subject: "no id" }),
  ];
  await appendMessages(imapUser, "Archive", archived);
  await appendMessages(imapUser, "INBOX", [message()]);
  const first = await importOnce(sql, userId);
  assert.equal(first.details.inserted, 4, first.error);
  const before = await emailsOf(mailboxId);

  await doveadm("mailbox", "delete", "-u", imapUser.username, "Archive");
  await doveadm("mailbox", "create", "-u", imapUser.username, "Archive");
  await appendMessages(imapUser, "Archive", archived);

  const second = await importOnce(sql, userId);
  assert.equal(second.status, "succeeded", second.error);
  assert.deepEqual(second.details.uidvalidity_resets, ["Archive"]);
  assert.equal(second.details.inserted, 0);
  assert.equal(second.details.remapped, 3);
  const after = await emailsOf(mailboxId);
  assert.equal(after.length, before.length, "no duplicates");
  const archiveValidities = new Set(
    after.filter((row) => row.folder === "Archive").map((row) => row.uid_validity),
  );
  assert.equal(archiveValidities.size, 1);
  assert.notEqual(
    [...archiveValidities][0],
    before.find((row) => row.folder === "Archive")!.uid_validity,
  );
  const [state] =
    await sql`select resets from auto_sync.folder_state where mailbox_id = ${mailboxId} and folder = 'Archive'`;
  assert.equal(state.resets, 1);
});

Deno.test("the IMAP server killed mid-import: committed batches match the state, the next run resumes, nothing lost or doubled", async () => {
  const { userId, imapUser, mailboxId } = await setup({ tls: "plain" });
  const seeded = Array.from(
    { length: 400 },
    (_, i) => message({ subject: `bulk ${i}`, body: "x".repeat(2000) }),
  );
  await appendMessages(imapUser, "INBOX", seeded);

  const runId = await acceptedRun(sql, userId);
  // Stop the real server right after the third batch was committed.
  const killAfterThirdBatch = async (batch: number) => {
    if (batch === 3) await stopDovecot();
  };
  try {
    await importer(sql, { chunkSize: 5 }, { afterBatch: killAfterThirdBatch }).runner({
      runId,
      userId,
    });
  } finally {
    await startDovecot();
  }

  const [interrupted] =
    await sql`select status, error, details from auto_sync.runs where id = ${runId}`;
  assert.ok(["failed", "partial"].includes(interrupted.status), interrupted.status);
  assert.ok(interrupted.error);
  const [state] =
    await sql`select last_uid from auto_sync.folder_state where mailbox_id = ${mailboxId} and folder = 'INBOX'`;
  const committed = await emailsOf(mailboxId);
  // Three batches were committed when the server died; the fourth and fifth may have
  // been fetched already (a write overlaps the next parse, a parse the next fetch) and
  // committed after.
  assert.ok([15, 20, 25].includes(committed.length), `${committed.length} committed`);
  assert.equal(Number(state.last_uid), committed.length, "state covers exactly the committed rows");
  assert.deepEqual(committed.map((row) => Number(row.uid)), committed.map((_, i) => i + 1));

  const resumed = await importOnce(sql, userId);
  assert.equal(resumed.status, "succeeded", resumed.error);
  const all = await emailsOf(mailboxId);
  assert.equal(all.length, 400);
  assert.deepEqual(all.map((row) => row.subject).sort(), seeded.map((_, i) => `bulk ${i}`).sort());
  assert.equal(new Set(all.map((row) => row.message_id)).size, 400);
});

Deno.test("beforeunload mid-import: the run ends partial at the next chunk, the lease is free, the next run finishes", async () => {
  const { userId, imapUser, mailboxId } = await setup();
  await appendMessages(imapUser, "INBOX", Array.from({ length: 40 }, () => message()));
  const isolate = new EventTarget();
  const runId = await acceptedRun(sql, userId);
  const started = Date.now();
  await importer(sql, { chunkSize: 5 }, {
    shutdown: isolateShutdownSignal(isolate),
    afterBatch: (batch) => {
      if (batch === 1) isolate.dispatchEvent(new Event("beforeunload"));
      return Promise.resolve();
    },
  }).runner({ runId, userId });
  const [run] = await sql`select status, error, details from auto_sync.runs where id = ${runId}`;
  assert.equal(run.status, "partial");
  assert.match(run.error, /shutting down; the next run continues/);
  assert.ok(Date.now() - started < 10_000, "ended at once, not at the deadline");
  const [state] =
    await sql`select last_uid from auto_sync.folder_state where mailbox_id = ${mailboxId} and folder = 'INBOX'`;
  const saved = await emailsOf(mailboxId);
  assert.ok(saved.length > 0 && saved.length < 40, `${saved.length} saved`);
  assert.equal(Number(state.last_uid), saved.length, "the state covers exactly what was saved");

  // The lease was released: the next run is not refused as already running.
  const next = await importOnce(sql, userId);
  assert.equal(next.status, "succeeded", next.error);
  const all = await emailsOf(mailboxId);
  assert.equal(all.length, 40);
  assert.equal(new Set(all.map((row) => row.message_id)).size, 40);
});

Deno.test("a wrong password: failed run with a clear error and no credential; the third in a row pauses the mailbox", async () => {
  const { userId, imapUser, mailboxId } = await setup();
  await sql.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${
      JSON.stringify({ sub: userId, role: "authenticated" })
    }, true)`;
    await tx`set local role authenticated`;
    await tx`select public.update_mailbox(${mailboxId}, p_credential := 'not-the-password')`;
  });
  for (let attempt = 1; attempt <= 3; attempt++) {
    const run = await importOnce(sql, userId);
    assert.equal(run.status, "failed");
    assert.match(run.error, new RegExp(`Login failed for "${imapUser.username}"`));
    assert.equal(JSON.stringify(run).includes("not-the-password"), false);
  }
  const [mailbox] =
    await sql`select paused_reason, last_error from public.mailboxes where id = ${mailboxId}`;
  assert.match(mailbox.paused_reason, /Paused after 3 failed logins/);
  assert.equal(mailbox.last_error.includes("not-the-password"), false);

  const paused = await importOnce(sql, userId);
  assert.equal(paused.status, "skipped");
  assert.match(paused.error, /Paused/);
  assert.equal(
    paused.details.mailboxes[0].imap_commands,
    undefined,
    "no connection to the server while paused",
  );
});

Deno.test("two imports of one mailbox at once: one runs, the other is refused, nothing duplicated", async () => {
  const { userId, imapUser, mailboxId } = await setup();
  await appendMessages(imapUser, "INBOX", Array.from({ length: 60 }, () => message()));
  const [first, second] = [await acceptedRun(sql, userId), await acceptedRun(sql, userId)];
  await Promise.all([
    importer(sql, { chunkSize: 5 }).runner({ runId: first, userId }),
    importer(sql, { chunkSize: 5 }).runner({ runId: second, userId }),
  ]);
  const runs =
    await sql`select status, error from auto_sync.runs where id in (${first}, ${second}) order by status`;
  assert.deepEqual(runs.map((run) => run.status).sort(), ["skipped", "succeeded"]);
  assert.match(runs.find((run) => run.status === "skipped")!.error, /already running/);
  assert.equal((await emailsOf(mailboxId)).length, 60);
});

Deno.test("the per-run budget stops early, says so, and the next run continues", async () => {
  const { userId, imapUser, mailboxId } = await setup();
  await appendMessages(imapUser, "INBOX", Array.from({ length: 30 }, () => message()));
  const first = await importOnce(sql, userId, { maxMessages: 20, chunkSize: 10 });
  assert.equal(first.status, "partial");
  assert.equal(first.details.has_more, true);
  assert.equal(first.details.fetched, 20);
  const second = await importOnce(sql, userId, { maxMessages: 20, chunkSize: 10 });
  assert.equal(second.status, "succeeded");
  assert.equal(second.details.fetched, 10);
  assert.equal((await emailsOf(mailboxId)).length, 30);
});

Deno.test("STARTTLS with the test CA works; TLS verification stays on", async () => {
  const { userId, imapUser } = await setup({ tls: "starttls" });
  await appendMessages(imapUser, "INBOX", [message()]);
  const run = await importOnce(sql, userId);
  assert.equal(run.status, "succeeded", run.error);
  assert.equal(run.details.inserted, 1);
});

Deno.test("without the server's CA the TLS connection is refused, not downgraded", async () => {
  const { userId, imapUser, mailboxId } = await setup({ tls: "tls" });
  await appendMessages(imapUser, "INBOX", [message()]);
  const runId = await acceptedRun(sql, userId);
  await importer(sql, {}, { trustTestCa: false }).runner({ runId, userId });
  const [run] = await sql`select status, error from auto_sync.runs where id = ${runId}`;
  assert.equal(run.status, "failed");
  assert.match(run.error, /TLS certificate of localhost is not trusted/);
  assert.equal((await emailsOf(mailboxId)).length, 0);
});

Deno.test("a mailbox pointing at a loopback or private address is refused unless allowed", async () => {
  const { userId, imapUser, mailboxId } = await setup({ tls: "plain" });
  await appendMessages(imapUser, "INBOX", [message()]);
  const runId = await acceptedRun(sql, userId);
  const { log, runner } = importer(sql, {}, { allowPrivateHosts: false, allowPlaintext: true });
  await runner({ runId, userId });
  const [run] = await sql`select status, error, details from auto_sync.runs where id = ${runId}`;
  assert.equal(run.status, "failed");
  // The user reads a generic text (no resolved address: no oracle of the internal
  // network); the operator's log has the reason.
  assert.equal(run.error, `Cannot connect to the mail server "127.0.0.1:${IMAP_PORT}"`);
  assert.match(
    log.lines.join("\n"),
    /Refusing to connect to 127\.0\.0\.1: 127\.0\.0\.1 is a loopback, private or link-local address/,
  );
  assert.equal(run.details.mailboxes[0].imap_commands, undefined, "no connection was made");
  assert.equal((await emailsOf(mailboxId)).length, 0);
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
