/**
 * After the OAuth tests ("zz" sorts it last in tests/oauth/): neither the functions' OAuth
 * client secret nor any refresh token stored for a connected mailbox appears in what the
 * stack wrote (the gateway log: every function's stdout and stderr; the Postgres server log)
 * or in a run's error or details. Needs the running stack.
 */
import assert from "node:assert/strict";
import { connect, readFunctionsEnv, stateDir } from "../support/local_stack.ts";

const sql = connect();

function readIfPresent(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

Deno.test("no OAuth client secret or refresh token in the logs or the runs", async () => {
  const secret = readFunctionsEnv().OAUTH_GENERIC_CLIENT_SECRET;
  assert.ok(secret && secret.length >= 32, "the stack's functions have an OAuth client secret");
  const stored = await sql`
    select auto_sync.mailbox_credential(m.id) as token
      from public.mailboxes m where m.oauth_provider is not null`;
  const tokens = stored.map((row) => row.token as string).filter((token) => token?.length >= 16);
  const [runs] = await sql`select string_agg(coalesce(error, '') || details::text, ' ') as text
                             from auto_sync.runs`;
  const places = {
    "gateway log": readIfPresent(`${stateDir}/gateway.log`),
    "postgres log": readIfPresent(`${stateDir}/pg/server.log`),
    "runs": String(runs.text ?? ""),
  };
  for (const [place, text] of Object.entries(places)) {
    assert.ok(!text.includes(secret), `the client secret is not in the ${place}`);
    for (const token of tokens) {
      assert.ok(!text.includes(token), `no stored refresh token in the ${place}`);
    }
  }
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
