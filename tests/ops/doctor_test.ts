/**
 * doctor against the local stack: all checks pass on a healthy stack, and a broken
 * setting turns into a FAIL line and a non-zero exit.
 */
import assert from "node:assert/strict";
import { connect } from "../support/local_stack.ts";

const repo = new URL("../../", import.meta.url).pathname;
const sql = connect();

async function doctor() {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-run",
      `${repo}ops/doctor.ts`,
      "--local-stack",
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
