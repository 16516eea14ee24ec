/**
 * The signing secret appears nowhere an attacker or an operator could read it: the
 * gateway log (every function's stdout and stderr), the requests dispatch() gives
 * pg_net's worker to send, the Postgres server log (pg_net's worker logs there), and
 * the database places a request or its answer ends up in (pg_net's response table,
 * the cron job and its run details, run errors and details). Each attack file scans
 * the response bodies it received; this one scans what the whole stack wrote.
 *
 * It needs no other test to have run first: each scan follows traffic this file sends
 * itself (refused and accepted requests over both ports, deliveries by pg_net's worker,
 * one of them to a closed port) and checks that traffic is in what it scans. Whatever
 * other tests wrote before is scanned too. Forms looked for, per stackSecrets() value:
 * the whole `whsec_...`, its base64 part, its first 12 characters, the first 12 of the
 * base64 part, the key bytes as hex and as base64url.
 */
import assert from "node:assert/strict";
import { connect, stackSecrets, stateDir, waitFor } from "../support/local_stack.ts";
import { queueLikeDispatch } from "../support/sent_requests.ts";
import { testPorts } from "../../local-stack/urls.ts";
import * as attack from "../support/attack_support.ts";

const sql = connect();
const fixtures = new attack.Fixtures(sql);
const gatewayLog = `${stateDir}/gateway.log`;

function readIfPresent(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

/** The gateway log once it holds a line with `message` for `runId` (functions write it asynchronously). */
async function logWith(message: string, runId: string): Promise<string> {
  return await waitFor(async () => {
    const log = await Deno.readTextFile(gatewayLog);
    const logged = log.split("\n").some((line) =>
      line.includes(message) && line.includes(`"run_id":"${runId}"`)
    );
    return logged ? log : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100 });
}

Deno.test("the secret forms are specific enough to scan for", () => {
  for (const secret of stackSecrets()) {
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    for (const form of attack.secretForms(secret)) assert.ok(form.length >= 12);
  }
});

Deno.test("no signing secret in the gateway log (every function's output), after refusals and an acceptance", async () => {
  const refusedRun = await fixtures.run();
  const acceptedRun = await fixtures.run();
  const valid = attack.signClaims(acceptedRun.claims);
  const statuses: number[] = [];
  for (const target of attack.TARGETS) {
    // Refused before the signature checks out (rate-limited log lines) and after it
    // (a correctly signed request for another audience: logged with its run id).
    const badKey = attack.signRaw(
      valid.id,
      valid.timestamp,
      valid.body,
      crypto.getRandomValues(new Uint8Array(32)),
    );
    statuses.push((await attack.post(badKey, { target })).status);
    const stale = attack.signClaims(refusedRun.claims, {
      timestamp: String(Number(valid.timestamp) - 3_600),
    });
    statuses.push((await attack.post(stale, { target })).status);
    const otherAudience = attack.signClaims({ ...refusedRun.claims, aud: "someone-else" });
    statuses.push((await attack.post(otherAudience, { target })).status);
  }
  assert.deepEqual(statuses, [401, 401, 403, 401, 401, 403]);
  assert.equal((await attack.post(valid, { target: attack.TARGETS[0] })).status, 202);
  assert.equal((await attack.post(valid, { target: attack.TARGETS[1] })).status, 409);
  assert.equal(await attack.waitFinished(sql, acceptedRun.runId), "skipped");

  await logWith("Rejected signed request", refusedRun.runId);
  const log = await logWith("Signed request accepted", acceptedRun.runId);
  attack.assertNoSecretIn([log], ".stack/gateway.log");
});

Deno.test("no signing secret in the requests dispatch() gives pg_net's worker to send", async () => {
  // A real dispatch for a due schedule, read from net.http_request_queue inside the
  // dispatching transaction (exactly what the worker would send), then rolled back.
  const rolledBack = new Error("rolled back on purpose");
  let texts: string[] = [];
  await sql.begin(async (tx) => {
    const [user] = await tx`
      insert into auth.users (id, email) values (gen_random_uuid(), 'leak-' || gen_random_uuid() || '@example.test')
      returning id`;
    await tx`
      insert into auto_sync.schedules (user_id, every, enabled, next_run_at)
      values (${user.id}, '1 hour', true, now() - interval '1 second')`;
    await tx`select auto_sync.dispatch()`;
    const rows = await tx`
      select q.url || ' ' || q.headers::text || ' ' || convert_from(q.body, 'UTF8') as text
        from net.http_request_queue q join auto_sync.runs r on r.net_request_id = q.id
       where r.user_id = ${user.id}`;
    texts = rows.map((row) => row.text as string);
    throw rolledBack;
  }).catch((error) => {
    if (error !== rolledBack) throw error;
  });
  assert.equal(texts.length, 1, "dispatch() queued the due schedule's request");
  assert.match(texts[0], /webhook-signature/);
  attack.assertNoSecretIn(texts, "requests queued for pg_net");
});

Deno.test("no signing secret in the database places requests and answers end up in, after deliveries by pg_net", async () => {
  // One request the function accepts and one to a closed port, both sent by pg_net's
  // worker: their answers, and the refused one's run error, are among what is scanned.
  const delivered = await fixtures.run();
  const undelivered = await fixtures.run();
  const { netId: deliveredId } = await queueLikeDispatch(sql, delivered);
  const { netId: undeliveredId } = await queueLikeDispatch(sql, {
    ...undelivered,
    url: `http://127.0.0.1:${testPorts.closedPort}/cron-auto-sync`,
  });
  await waitFor(async () => {
    const [row] = await sql`
      select count(*)::int as n from net._http_response
       where id in (${deliveredId}::bigint, ${undeliveredId}::bigint)`;
    return row.n === 2 ? true : undefined;
  }, { timeoutMs: 30_000, intervalMs: 100 });
  assert.equal(await attack.waitFinished(sql, delivered.runId), "skipped");
  await sql`select auto_sync.reconcile_runs()`;
  const [failed] =
    await sql`select status, error from auto_sync.runs where id = ${undelivered.runId}`;
  assert.equal(failed.status, "failed");
  assert.match(failed.error, /^Request not delivered/);

  const rows = await sql`
    select id::text as net_id, coalesce(content, '') || ' ' || coalesce(headers::text, '') || ' ' || coalesce(error_msg, '') as text
      from net._http_response
    union all select null, command from cron.job
    union all select null, coalesce(return_message, '') from cron.job_run_details
    union all select null, coalesce(error, '') || ' ' || coalesce(details::text, '') from auto_sync.runs
    union all select null, convert_from(coalesce(body, ''), 'UTF8') || ' ' || headers::text from net.http_request_queue`;
  const scannedIds = rows.map((row) => row.net_id);
  assert.ok(
    scannedIds.includes(deliveredId) && scannedIds.includes(undeliveredId),
    "this file's deliveries are scanned",
  );
  attack.assertNoSecretIn(rows.map((row) => row.text as string), "database tables");
});

Deno.test("no signing secret in the Postgres server log", () => {
  const log = readIfPresent(`${stateDir}/pg/server.log`);
  if (log === null) {
    console.log("The Postgres server log is not readable by this user; skipped.");
    return;
  }
  attack.assertNoSecretIn([log], ".stack/pg/server.log");
});

fixtures.cleanUpLast();
