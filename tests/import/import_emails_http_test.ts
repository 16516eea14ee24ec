/**
 * import-emails over real HTTP: the platform's verify_jwt is off (config.toml), the
 * function verifies the user token itself, and a user only ever syncs themself.
 */
import assert from "node:assert/strict";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import {
  connect,
  createUser,
  functionsUrl,
  mintUserToken,
  waitFor,
} from "../support/local_stack.ts";

const sql = connect();
const url = `${functionsUrl}/import-emails`;

function post(token: string | null, body: unknown = {}) {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
}

Deno.test("the function refuses a call without a token, or with a forged one", async () => {
  const response = await post(null);
  assert.equal(response.status, 401);
  assert.deepEqual(await response.json(), { error: "unauthorized" });

  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  const forged = await new SignJWT({ role: "authenticated" })
    .setProtectedHeader({ alg: "ES256", kid: "forged" })
    .setSubject(crypto.randomUUID()).setAudience("authenticated").setExpirationTime("5m")
    .sign(privateKey);
  assert.ok(jwk);
  const refused = await post(forged);
  assert.equal(refused.status, 401);
  assert.deepEqual(await refused.json(), { error: "unauthorized" });
});

Deno.test("a valid token of another role is refused by the function", async () => {
  const response = await post(await mintUserToken(crypto.randomUUID(), { role: "anon" }));
  assert.equal(response.status, 401);
  assert.deepEqual(await response.json(), { error: "unauthorized" });
});

Deno.test("a signed-in user's sync now: 202 with a run id, for that user only, ending skipped", async () => {
  const userId = await createUser(sql, "manual");
  const someoneElse = await createUser(sql, "other");
  const response = await post(await mintUserToken(userId), {
    user_id: someoneElse,
    sub: someoneElse,
  });
  assert.equal(response.status, 202);
  const { run_id: runId } = await response.json();

  const run = await waitFor(async () => {
    const [row] =
      await sql`select * from auto_sync.runs where id = ${runId} and finished_at is not null`;
    return row;
  }, { timeoutMs: 10_000 });
  assert.equal(run.user_id, userId);
  assert.equal(run.trigger, "manual");
  assert.equal(run.status, "skipped");
  assert.equal(run.error, "no mailbox configured");
  const others = await sql`select 1 from auto_sync.runs where user_id = ${someoneElse}`;
  assert.equal(others.length, 0);
});

Deno.test("sync now at most once a minute: a second call gets 429 with Retry-After", async () => {
  const token = await mintUserToken(await createUser(sql, "eager"));
  const first = await post(token);
  assert.equal(first.status, 202);
  await first.body?.cancel();
  const second = await post(token);
  assert.equal(second.status, 429);
  const retryAfter = Number(second.headers.get("retry-after"));
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${retryAfter}`);
  assert.deepEqual(await second.json(), { error: "too_many_requests" });
});

Deno.test("an anonymous user's sync now is refused (403, no run) until allow_anonymous_users is on", async () => {
  const userId = await createUser(sql, "anonymous");
  const token = await mintUserToken(userId, { isAnonymous: true });
  const refused = await post(token);
  assert.equal(refused.status, 403);
  assert.deepEqual(await refused.json(), { error: "forbidden" });
  assert.equal((await sql`select 1 from auto_sync.runs where user_id = ${userId}`).length, 0);

  await sql`update auto_sync.settings set allow_anonymous_users = true`;
  try {
    const allowed = await post(token);
    assert.equal(allowed.status, 202);
    await allowed.body?.cancel();
  } finally {
    await sql`update auto_sync.settings set allow_anonymous_users = false`;
  }
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
