/**
 * The hostile IMAP server suite: a mailbox points at a scripted server that lies
 * (tests/support/hostile_imap_server.ts). For each lie: the run ends with a truthful
 * status within its hard stop, memory stays bounded, nothing beyond the bounds is
 * stored, nothing is duplicated, and the next run against the honest server (Dovecot)
 * imports exactly the folder.
 */
import assert from "node:assert/strict";
import { connect, createUser } from "../support/local_stack.ts";
import {
  acceptedRun,
  addMailbox,
  appendMessages,
  createImapUser,
  importer,
  importOnce,
  message,
  withImapClient,
} from "../support/imap.ts";
import { type Script, startHostileServer } from "../support/hostile_imap_server.ts";

const sql = connect();
const MiB = 1024 * 1024;
const LIMITS = {
  maxMessages: 3,
  chunkSize: 2,
  maxMessageBytes: 64 * 1024,
  maxSeconds: 2,
  stopGraceSeconds: 2,
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Each lie, and the error the run must state (a truthful reason, not just any). */
const cases: Record<string, Script & { expect: RegExp }> = {
  "an oversized literal (200 MiB for a 64 KiB FETCH)": {
    expect: /sent an answer larger than the importer accepts/,
    async fetch(uids, _tag, io) {
      await io.write(
        `* 1 FETCH (UID ${uids[0]} RFC822.SIZE 209715200 BODY[]<0> {209715200}\r\n`,
      );
      const block = new Uint8Array(64 * 1024).fill(120);
      for (let sent = 0; sent < 200 * MiB; sent += block.length) await io.write(block);
    },
  },
  "an endless literal (announced at 1 TiB)": {
    expect: /sent an answer larger than the importer accepts/,
    async fetch(uids, _tag, io) {
      await io.write(`* 1 FETCH (UID ${uids[0]} BODY[]<0> {1099511627776}\r\n`);
      const block = new Uint8Array(64 * 1024).fill(120);
      while (true) await io.write(block);
    },
  },
  "rows for UIDs never asked for, and rows sent twice": {
    expect: /^Budget reached; the next run continues$/,
    async fetch(uids, tag, io) {
      // Each asked row twice (the second copy another message's), then rows nobody
      // asked for: other UIDs of the folder, and UIDs it does not have.
      for (const uid of uids) await io.write(io.honestRow(uid, uid));
      for (const uid of uids) await io.write(io.honestRow(uid === 1 ? 2 : 1, uid, uid));
      for (const [uid, claimed] of [[4, 4], [5, 5], [1, 999], [2, 4294967295], [3, 0]]) {
        await io.write(io.honestRow(uid, uid, claimed));
      }
      await io.write(`${tag} OK done\r\n`);
    },
  },
  "a different UIDVALIDITY in EXAMINE than in STATUS": {
    expect: /sent two different UIDVALIDITY values/,
    examine: (honest) => honest.map((line) => line.replace(/UIDVALIDITY \d+/, "UIDVALIDITY 1")),
  },
  "an absurd UIDNEXT in STATUS": {
    expect: /^Budget reached; the next run continues$/,
    status: (honest) => honest.replace(/UIDNEXT \d+/, "UIDNEXT 99999999999999"),
  },
  "an invalid UIDVALIDITY (0)": {
    expect: /sent an invalid UIDVALIDITY/,
    status: (honest) => honest.replace(/UIDVALIDITY \d+/, "UIDVALIDITY 0"),
  },
  "a malformed BODYSTRUCTURE": {
    expect: /sent an answer the importer cannot read/,
    async fetch(uids, tag, io) {
      for (const uid of uids) {
        await io.write(`* ${uid} FETCH (UID ${uid} BODYSTRUCTURE ((((("x" NIL 7 ((( "y")\r\n`);
      }
      await io.write(`${tag} OK done\r\n`);
    },
  },
  "a slow drip that never ends the FETCH": {
    expect: /did not finish answering within the run's time limit/,
    async fetch(uids, _tag, io) {
      await io.write(`* 1 FETCH (UID ${uids[0]} FLAGS (`);
      while (true) {
        await sleep(300);
        await io.write("\\");
      }
    },
  },
  "a disconnect in the middle of a literal": {
    expect: /connection to the mail server "127\.0\.0\.1:\d+" was lost/,
    async fetch(uids, _tag, io) {
      const row = io.honestRow(uids[0], 1);
      await io.write(row.subarray(0, row.length - 40));
      io.close();
    },
  },
  "BYE after the first chunk": {
    expect: /connection to the mail server "127\.0\.0\.1:\d+" was lost/,
    async fetch(uids, tag, io) {
      if (uids[0] === 1) {
        for (const uid of uids) await io.write(io.honestRow(uid, uid));
        return void await io.write(`${tag} OK done\r\n`);
      }
      await io.write("* BYE going away\r\n");
      io.close();
    },
  },
  "a huge folder list": {
    expect: /sent too many answers/,
    async list(_tag, write) {
      const lines: string[] = [];
      for (let i = 0; i < 50_000; i++) lines.push(`* LIST () "/" "folder-${i}"\r\n`);
      for (let i = 0; i < lines.length; i += 1000) {
        await write(lines.slice(i, i + 1000).join(""));
      }
    },
  },
  "escape sequences in the error text": {
    expect: /^IMAP error at 127\.0\.0\.1: .*examine refused/,
    examine: (_honest, tag) => [`${tag} NO \u001b]0;owned\u0007\u001b[2J\u009b31m examine refused`],
  },
};

async function honestCopy(user: { username: string; password: string }) {
  return await withImapClient(user, async (client) => {
    const lock = await client.getMailboxLock("INBOX");
    try {
      const uidValidity = Number(client.mailbox ? client.mailbox.uidValidity : 0);
      const messages: Array<{ uid: number; source: Uint8Array }> = [];
      for await (const row of client.fetch("1:*", { uid: true, source: true })) {
        messages.push({ uid: row.uid, source: row.source! });
      }
      return { uidValidity, messages };
    } finally {
      lock.release();
    }
  });
}

for (const [name, script] of Object.entries(cases)) {
  Deno.test(`hostile IMAP server: ${name}`, async () => {
    const userId = await createUser(sql, "hostile-imap");
    const imapUser = await createImapUser();
    const sources = Array.from({ length: 5 }, (_, i) => message({ subject: `honest ${i + 1}` }));
    await appendMessages(imapUser, "INBOX", sources);
    const folder = await honestCopy(imapUser);
    const server = startHostileServer(folder, script);
    try {
      const mailboxId = await addMailbox(sql, userId, imapUser, {
        tls: "plain",
        port: server.port,
      });
      const runId = await acceptedRun(sql, userId);
      const before = Deno.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 20);
      const started = Date.now();
      try {
        await importer(sql, LIMITS).runner({ runId, userId });
      } finally {
        clearInterval(sampler);
      }
      const elapsed = Date.now() - started;
      const hardStop = (LIMITS.maxSeconds + LIMITS.stopGraceSeconds) * 1000;
      assert.ok(elapsed < hardStop + 5_000, `run took ${elapsed} ms`);
      assert.ok(peak - before < 48 * MiB, `memory grew by ${(peak - before) / MiB} MiB`);

      const [run] =
        await sql`select status, error, details from auto_sync.runs where id = ${runId}`;
      const rows = await sql`
        select uid, subject, message_id from public.emails where mailbox_id = ${mailboxId} order by uid`;
      // Truthful: a failure that stored nothing is failed; something stored is partial
      // (the budget of 3 of 5 messages leaves more in any case).
      assert.equal(run.status, rows.length > 0 ? "partial" : "failed", JSON.stringify(run));
      assert.match(run.error ?? "", script.expect, `the reason is stated truthfully: ${run.error}`);
      // deno-lint-ignore no-control-regex
      assert.doesNotMatch(run.error, /[\u0000-\u001f\u007f-\u009f]/);
      assert.ok(rows.length <= LIMITS.maxMessages, `${rows.length} rows on a budget of 3`);
      for (const row of rows) {
        assert.equal(row.subject, `honest ${row.uid}`, "each row is the honest message of its UID");
      }
      assert.equal(new Set(rows.map((row) => row.uid)).size, rows.length, "no duplicates");
      const [sizes] = await sql`
        select coalesce(max(length(body_text)), 0) as body from public.emails where mailbox_id = ${mailboxId}`;
      assert.ok(sizes.body <= LIMITS.maxMessageBytes);

      server.honest();
      const next = await importOnce(sql, userId);
      assert.equal(next.status, "succeeded", next.error);
      const all = await sql`
        select uid, subject from public.emails where mailbox_id = ${mailboxId} order by uid`;
      assert.deepEqual(
        all.map((row) => [Number(row.uid), row.subject]),
        [1, 2, 3, 4, 5].map((uid) => [uid, `honest ${uid}`]),
        "the honest run completes the folder: nothing lost, nothing doubled",
      );
    } finally {
      server.close();
    }
  });
}

Deno.test({ name: "close the database connection", fn: () => sql.end() });
