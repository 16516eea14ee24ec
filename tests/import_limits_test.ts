/**
 * The importer within the edge runtime's per-instance limits, on the stack: a gateway
 * with small limits (local-stack/isolate_limits.ts) serves the real functions, and
 * signed requests land in one function instance side by side, sharing its budget
 * (functions-shared/import_emails/isolate_budget.ts).
 */
import assert from "node:assert/strict";
import { holdImportAfterFirstBatch, type ImportHold } from "./support/import_hold.ts";
import type postgres from "postgres";
import { testPorts } from "../local-stack/urls.ts";
import { type GatewayProcess, startGateway } from "./support/gateway_process.ts";
import { addMailbox, appendMessages, createImapUser, message } from "./support/imap.ts";
import {
  connect,
  createUser,
  dbUrl,
  readFunctionsEnv,
  stateDir,
  waitFor,
} from "./support/local_stack.ts";
import { claimsFor, createDispatchedRun, signInDatabase } from "./support/signed_requests.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A gateway over this repository's functions, with the given limits and function secrets. */
async function limitedGateway(
  flags: string[],
  secrets: Record<string, string>,
): Promise<GatewayProcess> {
  const dir = Deno.makeTempDirSync({ prefix: "limits-" });
  const env = { ...readFunctionsEnv(), ...secrets };
  Deno.writeTextFileSync(
    `${dir}/functions.env`,
    Object.entries(env).map(([name, value]) => `${name}=${JSON.stringify(value)}`).join("\n"),
    { mode: 0o600 },
  );
  return await startGateway(testPorts.platformGateway, [
    "--db-url",
    dbUrl,
    "--env-file",
    `${dir}/functions.env`,
    "--project",
    `${stateDir}/project.json`,
    ...flags,
  ]);
}

/** A scheduled run for the user, signed by the database, sent to the gateway; its run id. */
async function sendSignedRun(
  sql: postgres.Sql,
  gateway: GatewayProcess,
  userId: string,
): Promise<string> {
  const runId = await createDispatchedRun(sql, userId);
  const request = await signInDatabase(sql, claimsFor(userId, runId));
  const response = await fetch(`${gateway.functionsUrl}/cron-auto-sync`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": request.id,
      "webhook-timestamp": request.timestamp,
      "webhook-signature": request.signature,
    },
    body: request.body,
  });
  const text = await response.text();
  assert.equal(response.status, 202, text);
  return runId;
}

async function runsFinished(sql: postgres.Sql, runIds: string[]) {
  return await waitFor(async () => {
    const rows = await sql`
      select id, status, error, details from auto_sync.runs where id = any(${runIds}::uuid[])`;
    return rows.every((row) => !["dispatched", "accepted", "running"].includes(row.status))
      ? rows
      : undefined;
  }, { timeoutMs: 60_000 });
}

async function mailCounts(sql: postgres.Sql, mailboxIds: string[]) {
  return await sql`
    select m.id, count(e.*)::int as emails, count(distinct (e.uid_validity, e.uid))::int as uids,
           count(distinct e.message_id)::int as message_ids
      from public.mailboxes m left join public.emails e on e.mailbox_id = m.id
     where m.id = any(${mailboxIds}::uuid[])
     group by m.id`;
}

// Through the stack's Dovecot over loopback: the functions may reach private hosts here.
const FUNCTION_SECRETS = { IMAP_ALLOW_PRIVATE_HOSTS: "true" };

Deno.test("four users' first imports landing in one instance finish over follow-up runs, every message exactly once", async () => {
  const perUser = 2_500;
  const sql = connect();
  const users: string[] = [];
  const gateway = await limitedGateway(
    ["--wall-clock-ms", "12000", "--memory-mb", "128"],
    { ...FUNCTION_SECRETS, FUNCTION_WALL_CLOCK_SECONDS: "12" },
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
