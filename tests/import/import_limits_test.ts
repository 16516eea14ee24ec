/**
 * The importer within the edge runtime's per-instance limits, on the stack: a gateway
 * with small limits (local-stack/isolate_limits.ts) serves the real functions, and
 * signed requests land in one function instance side by side, sharing its budget
 * (functions-shared/import_emails/isolate_budget.ts). In the self-hosted mode, the
 * `main` router's 60 s and 150 MB, with follow-up runs dispatched by pg_cron.
 */
import assert from "node:assert/strict";
import { withFastDispatchTick } from "../support/dispatch_tick.ts";
import { holdImportAfterFirstBatch, type ImportHold } from "../support/import_hold.ts";
import { addMailbox, appendMessages, createImapUser, message } from "../support/imap.ts";
import { connect, createUser, waitFor } from "../support/local_stack.ts";
import {
  FUNCTION_SECRETS,
  limitedGateway,
  mailCounts,
  runsFinished,
  sendSignedRun,
  sleep,
} from "../support/limited_gateway.ts";

Deno.test("four users' first imports landing in one instance finish over follow-up runs, every message exactly once", async () => {
  const perUser = 2_500;
  const sql = connect();
  const users: string[] = [];
  const gateway = await limitedGateway(
    ["--wall-clock-ms", "12000", "--memory-mb", "128"],
    // 500 a run (the default is 5,000): every user's import takes several runs.
    { ...FUNCTION_SECRETS, FUNCTION_WALL_CLOCK_SECONDS: "12", IMPORT_MAX_MESSAGES: "500" },
  );
  try {
    const mailboxIds: string[] = [];
    const imapUsers = [];
    for (let i = 0; i < 4; i++) {
      users.push(await createUser(sql, "limits"));
      imapUsers.push(await createImapUser()); // one at a time: dovecot.sh add-user
    }
    await Promise.all(imapUsers.map(async (imapUser, i) => {
      await appendMessages(imapUser, "INBOX", Array.from({ length: perUser }, () => message()));
      mailboxIds[i] = await addMailbox(sql, users[i], imapUser, { tls: "plain" });
    }));

    const statuses: Record<string, number> = {};
    let rounds = 0;
    const started = Date.now();
    while (true) {
      const counts = await mailCounts(sql, mailboxIds);
      const pending = users.filter((_, i) =>
        (counts.find((row) => row.id === mailboxIds[i])?.emails ?? 0) < perUser
      );
      if (pending.length === 0) break;
      assert.ok(
        Date.now() - started < 240_000,
        `not done after ${rounds} rounds: ${JSON.stringify(counts)} ${JSON.stringify(statuses)}`,
      );
      rounds++;
      // Every pending user's follow-up run at once: they land in the same instance.
      const runIds = await Promise.all(
        pending.map((userId) => sendSignedRun(sql, gateway, userId)),
      );
      for (const run of await runsFinished(sql, runIds)) {
        statuses[run.status] = (statuses[run.status] ?? 0) + 1;
        // Nothing fails: a run either imports, or ends at once for the next one to continue.
        assert.ok(["succeeded", "partial", "lost"].includes(run.status), JSON.stringify(run));
      }
      await sleep(500);
    }
    const counts = await mailCounts(sql, mailboxIds);
    const retired = gateway.output().match(/instance retired: [a-zA-Z -]+/g) ?? [];
    console.log(
      `${rounds} rounds in ${Date.now() - started} ms; run outcomes ${
        JSON.stringify(statuses)
      }; ${retired.length} instances retired (${[...new Set(retired)].join(", ")})`,
    );
    for (const row of counts) {
      assert.deepEqual({ emails: row.emails, uids: row.uids, message_ids: row.message_ids }, {
        emails: perUser,
        uids: perUser,
        message_ids: perUser,
      });
    }
    // More than one instance served them: the budget was shared and renewed.
    assert.ok((gateway.output().match(/instance retired/g) ?? []).length >= 1, gateway.output());
    assert.ok((statuses.partial ?? 0) >= 4, "first imports of 2,500 need follow-up runs");
    assert.equal(statuses.succeeded, 4, "each user's last run, and only that one, completes");
    assert.equal(
      statuses.lost,
      undefined,
      "the importer lives within the limits: no run is cut off",
    );
  } finally {
    await gateway.stop();
    const created = users.filter(Boolean);
    if (created.length) await sql`delete from auth.users where id = any(${created}::uuid[])`;
    await sql.end();
  }
});

Deno.test("a run cut off by the instance's limit is called lost within a minute, and the next run finishes it", async () => {
  const sql = connect();
  const holder = connect();
  const total = 60;
  let userId = "";
  let hold: ImportHold | undefined;
  // beforeunload at 100 %: the kill comes with no warning, as at a CPU or memory limit.
  const gateway = await limitedGateway(
    ["--wall-clock-ms", "8000", "--beforeunload-pct", "100"],
    { ...FUNCTION_SECRETS, FUNCTION_WALL_CLOCK_SECONDS: "8" },
  );
  try {
    userId = await createUser(sql, "limits-cut");
    const imapUser = await createImapUser();
    await appendMessages(imapUser, "INBOX", Array.from({ length: total }, () => message()));
    const mailboxId = await addMailbox(sql, userId, imapUser, { tls: "plain" });
    // The import's second batch waits: the run is mid-import when its instance ends.
    hold = await holdImportAfterFirstBatch(sql, holder, mailboxId);

    const runId = await sendSignedRun(sql, gateway, userId);
    const [running] = await waitFor(async () => {
      const rows = await sql`
        select status, must_finish_by from auto_sync.runs where id = ${runId} and status = 'running'`;
      return rows.length ? rows : undefined;
    }, { timeoutMs: 20_000 });
    const mustFinishBy = new Date(running.must_finish_by).getTime();
    // The instance's wall clock ends; the gateway kills it mid-import.
    await waitFor(
      () => Promise.resolve(/instance terminated: wall clock/.test(gateway.output()) || undefined),
      { timeoutMs: 20_000 },
    );
    const killedAt = Date.now();
    await hold.release();
    assert.ok(
      Math.abs(killedAt - mustFinishBy) < 3_000,
      `the run row knew when its instance would end (${mustFinishBy} vs ${killedAt})`,
    );

    // What the pg_cron job auto-sync-stopped-runs does every minute.
    const [lost] = await waitFor(async () => {
      await sql`select auto_sync.reconcile_stopped_runs()`;
      const rows = await sql`
        select status, error from auto_sync.runs where id = ${runId} and status = 'lost'`;
      return rows.length ? rows : undefined;
    }, { timeoutMs: 30_000 });
    const lostAfter = Date.now() - killedAt;
    console.log(`lost ${lostAfter} ms after the kill`);
    assert.ok(lostAfter < 60_000, `${lostAfter} ms`);
    assert.match(lost.error, /function instance ended/);

    // The next run (a fresh instance) resumes at once: reconcile released the dead run's lease.
    const next = await sendSignedRun(sql, gateway, userId);
    const [finished] = await runsFinished(sql, [next]);
    assert.equal(finished.status, "succeeded", JSON.stringify(finished));
    const [counts] = await mailCounts(sql, [mailboxId]);
    assert.deepEqual({ emails: counts.emails, uids: counts.uids }, { emails: total, uids: total });
  } finally {
    await hold?.remove();
    await gateway.stop();
    if (userId) await sql`delete from auth.users where id = ${userId}`;
    await holder.end();
    await sql.end();
  }
});

Deno.test("self-hosted (the main router's 60 s and 150 MB): a first import of 2,500 messages completes over follow-up runs pg_cron dispatches, none cut off", async () => {
  const total = 2_500;
  const sql = connect();
  let userId = "";
  // The mode: the limits are the router's, and the functions find their 60 s wall clock
  // themselves (VERIFY_JWT in their environment). 500 messages a run (the default is
  // 5,000), so that the import takes follow-ups.
  const gateway = await limitedGateway(["--mode", "self-hosted"], {
    ...FUNCTION_SECRETS,
    IMPORT_MAX_MESSAGES: "500",
  });
  const [{ endpoint_url: endpoint }] = await sql`select endpoint_url from auto_sync.settings`;
  try {
    userId = await createUser(sql, "limits-self-hosted");
    const imapUser = await createImapUser();
    await appendMessages(imapUser, "INBOX", Array.from({ length: total }, () => message()));
    const mailboxId = await addMailbox(sql, userId, imapUser, { tls: "plain" });
    await sql`update auto_sync.settings set endpoint_url = ${`${gateway.functionsUrl}/cron-auto-sync`}`;
    await sql`select auto_sync.enable(${userId}, '30 minutes')`;
    const started = Date.now();
    await withFastDispatchTick(sql, 2, () =>
      waitFor(async () => {
        // A follow-up waits a minute (auto_sync.next_run_at 'follow_up'); the test skips
        // that minute, pg_cron's tick still dispatches every run.
        await sql`
          update auto_sync.schedules set next_run_at = now()
           where user_id = ${userId} and next_run_at > now()
             and next_run_at <= now() + interval '2 minutes'`;
        const [counts] = await mailCounts(sql, [mailboxId]);
        return counts.emails >= total ? counts : undefined;
      }, { timeoutMs: 240_000, intervalMs: 1_000 }));
    const runs = await runsFinished(
      sql,
      (await sql`select id from auto_sync.runs where user_id = ${userId}`).map((row) => row.id),
    );
    const rows = await sql`
      select status, trigger, net_request_id, details,
             extract(epoch from must_finish_by - accepted_at) as window_seconds
        from auto_sync.runs where user_id = ${userId} order by dispatched_at`;
    const statuses = rows.map((row) => row.status);
    console.log(
      `${rows.length} runs in ${Date.now() - started} ms: ${statuses.join(", ")}; ${
        (gateway.output().match(/instance retired/g) ?? []).length
      } instances retired`,
    );
    assert.equal(runs.length, rows.length);
    assert.ok(
      statuses.every((status) => status === "partial" || status === "succeeded"),
      statuses.join(),
    );
    assert.ok(
      statuses.filter((status) => status === "partial").length >= 2,
      "follow-up runs were needed",
    );
    assert.equal(statuses.at(-1), "succeeded");
    assert.ok(rows.every((row) => row.trigger === "schedule" && row.net_request_id !== null));
    // The importer knew its instance ends 60 s after it started.
    for (const row of rows) assert.ok(Number(row.window_seconds) <= 60, JSON.stringify(row));
    const [counts] = await mailCounts(sql, [mailboxId]);
    assert.deepEqual({ emails: counts.emails, uids: counts.uids, ids: counts.message_ids }, {
      emails: total,
      uids: total,
      ids: total,
    });
  } finally {
    if (userId) await sql`select auto_sync.disable(${userId})`;
    await sql`update auto_sync.settings set endpoint_url = ${endpoint}`;
    await gateway.stop();
    if (userId) await sql`delete from auth.users where id = ${userId}`;
    await sql.end();
  }
});
