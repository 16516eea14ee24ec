/**
 * Attack suite, last step ("zz" sorts it after the other tests/attack_*_test.ts):
 * after thousands of refused and accepted requests, the signing secret appears
 * nowhere an attacker or an operator could read it. Each attack file already
 * scanned every response body it received; this one scans what the whole stack
 * wrote: the gateway log (every function's stdout and stderr), the pg_net worker's
 * log and captured requests, the Postgres server log, and the database places a
 * request or its answer ends up in (pg_net's response table, the cron job and its
 * run details, run errors and details). Forms looked for, per stackSecrets() value:
 * the whole `whsec_...`, its base64 part, its first 12 characters, the first 12 of
 * the base64 part, the key bytes as hex and as base64url.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { connect, stackSecrets, stateDir } from "./support/local_stack.ts";
import { assertNoSecretIn, secretForms } from "./support/attack_support.ts";

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

Deno.test("no signing secret in the pg_net worker's log or in the requests it captured", () => {
  const texts = [readIfPresent(`${stateDir}/net_worker.log`) ?? ""];
  const dir = `${stateDir}/captured`;
  if (existsSync(dir)) {
    for (const entry of Deno.readDirSync(dir)) {
      if (entry.isFile) texts.push(Deno.readTextFileSync(`${dir}/${entry.name}`));
    }
  }
  assertNoSecretIn(texts, "pg_net worker log and captured requests");
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
