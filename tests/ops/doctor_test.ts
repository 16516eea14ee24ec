/**
 * doctor against the local stack: all checks pass on a healthy stack, and a broken
 * setting turns into a FAIL line and a non-zero exit. What the API roles can still use of
 * pg_net and Vault is a WARN (never in the exit status), also on a database where the
 * migration's revokes could not apply (tests/support/hosted_privileges_db.ts).
 */
import assert from "node:assert/strict";
import { connect, functionsUrl } from "../support/local_stack.ts";
import { createHostedPrivilegesDb } from "../support/hosted_privileges_db.ts";

const repo = new URL("../../", import.meta.url).pathname;
const sql = connect();

async function doctor(target: string[] = ["--local-stack"]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-run",
      `${repo}ops/doctor.ts`,
      ...target,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    text: new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr),
  };
}

Deno.test("a healthy stack passes every check, including both probes", async () => {
  const { code, text } = await doctor();
  assert.equal(code, 0, text);
  assert.doesNotMatch(text, /^FAIL/m);
  assert.match(text, /^PASS\s+signed probe accepted/m);
  assert.match(text, /^PASS\s+unsigned probe refused/m);
  assert.match(
    text,
    /^PASS\s+API roles on net \/ vault\s+none of anon, authenticated, service_role can use net or vault/m,
  );
});

Deno.test("a grant on net that comes back (a re-created pg_net) is a warning, not a failure", async () => {
  try {
    await sql`grant usage on schema net to anon`;
    await sql`grant execute on function net.http_get(text, jsonb, jsonb, integer) to anon`;
    const { code, text } = await doctor();
    assert.equal(code, 0, text);
    assert.match(text, /^WARN\s+API roles on net \/ vault\s+anon can still use them/m);
    assert.match(
      text,
      /^\s+anon on net: can send HTTP requests anywhere from the database \(http_get\)/m,
    );
    assert.doesNotMatch(text, /^\s+(authenticated|service_role) on/m);
    assert.match(text, /All checks passed \(1 warning\)\./);
  } finally {
    await sql`revoke execute on function net.http_get(text, jsonb, jsonb, integer) from anon`;
    await sql`revoke usage on schema net from anon`;
  }
});

Deno.test("where the revokes could not apply (extensions owned by supabase_admin, as on hosted), doctor names what each API role can use", async () => {
  const hosted = await createHostedPrivilegesDb();
  try {
    // PostgreSQL skipped the migration's revokes (or refused them, on Vault's internal
    // functions, where the role holds nothing), the migration went on and said so.
    assert.match(hosted.migrationOutput, /no privileges could be revoked/);
    assert.match(
      hosted.migrationOutput,
      /statements refused, this role holds no privilege on their object:\n\s+revoke all on function vault\._crypto_aead_det_noncegen\(\)/,
    );
    assert.match(hosted.migrationOutput, /pg_net\/Vault privileges this role could not revoke/);
    assert.match(hosted.migrationOutput, /^DO$/m);
    const { text } = await doctor(["--db-url", hosted.url, "--functions-url", functionsUrl]);
    assert.match(
      text,
      /^WARN\s+API roles on net \/ vault\s+anon, authenticated, service_role can still use them/m,
    );
    for (const role of ["anon", "authenticated", "service_role"]) {
      assert.match(
        text,
        new RegExp(
          `^\\s+${role} on net: can send HTTP requests anywhere from the database \\(http_delete, http_get, http_post\\); read queued signed requests; change the request queue`,
          "m",
        ),
      );
    }
    assert.match(
      text,
      /^\s+service_role on vault: can read every Vault secret in clear \(signing keys, mailbox credentials\); create or overwrite Vault secrets/m,
    );
    assert.doesNotMatch(text, /^\s+(anon|authenticated) on vault/m);
    assert.match(text, /What it means: /);
  } finally {
    await hosted.drop();
  }
});

Deno.test("a wrong endpoint setting fails the check and the exit status", async () => {
  const [{ endpoint_url: original }] = await sql`select endpoint_url from auto_sync.settings`;
  try {
    await sql`update auto_sync.settings set endpoint_url = 'https://wrong.example.com/functions/v1/cron-auto-sync'`;
    const { code, text } = await doctor();
    assert.equal(code, 1);
    assert.match(text, /^FAIL\s+endpoint URL setting\s+https:\/\/wrong\.example\.com/m);
  } finally {
    await sql`update auto_sync.settings set endpoint_url = ${original}`;
  }
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
