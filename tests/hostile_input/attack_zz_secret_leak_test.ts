/**
 * Attack suite, last step ("zz" sorts it after the other tests/attack_*_test.ts):
 * after thousands of refused and accepted requests, the signing secret appears
 * nowhere an attacker or an operator could read it. Each attack file already
 * scanned every response body it received; this one scans what the whole stack
 * wrote: the gateway log (every function's stdout and stderr), the requests
 * dispatch() gives pg_net's worker to send, the Postgres server log (pg_net's worker
 * logs there), and the database places a
 * request or its answer ends up in (pg_net's response table, the cron job and its
 * run details, run errors and details). Forms looked for, per stackSecrets() value:
 * the whole `whsec_...`, its base64 part, its first 12 characters, the first 12 of
 * the base64 part, the key bytes as hex and as base64url.
 */
import assert from "node:assert/strict";
import { connect, stackSecrets, stateDir } from "../support/local_stack.ts";
import { assertNoSecretIn, secretForms } from "../support/attack_support.ts";

const sql = connect();

function readIfPresent(path: string): string | null {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return null;
  }
}

Deno.test("the secret forms are specific enough to scan for", () => {
  for (const secret of stackSecrets()) {
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    for (const form of secretForms(secret)) assert.ok(form.length >= 12);
  }
});

Deno.test("no signing secret in the gateway log (every function's output)", () => {
  const log = Deno.readTextFileSync(`${stateDir}/gateway.log`);
  assert.ok(log.includes("Rejected signed request"), "the refusals were logged");
  assert.ok(log.includes("Signed request accepted"), "the acceptances were logged");
  assertNoSecretIn([log], ".stack/gateway.log");
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
  assertNoSecretIn(texts, "requests queued for pg_net");
});

Deno.test("no signing secret in the Postgres server log", () => {
  const log = readIfPresent(`${stateDir}/pg/server.log`);
  if (log === null) {
    console.log("The Postgres server log is not readable by this user; skipped.");
    return;
  }
  assertNoSecretIn([log], ".stack/pg/server.log");
});

Deno.test("no signing secret in the database places requests and answers end up in", async () => {
  const rows = await sql`
    select coalesce(content, '') || ' ' || coalesce(headers::text, '') || ' ' || coalesce(error_msg, '') as text
      from net._http_response
    union all select command from cron.job
    union all select coalesce(return_message, '') from cron.job_run_details
    union all select coalesce(error, '') || ' ' || coalesce(details::text, '') from auto_sync.runs
    union all select convert_from(coalesce(body, ''), 'UTF8') || ' ' || headers::text from net.http_request_queue`;
  assertNoSecretIn(rows.map((row) => row.text as string), "database tables");
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
