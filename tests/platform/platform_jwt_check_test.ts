/**
 * The platform's JWT check in front of the functions, on gateways of their own over the
 * stack's database: hosted `verify_jwt` (the legacy check, which refuses the ES256 user
 * tokens of projects on JWT signing keys) and the self-hosted `main` router's one
 * VERIFY_JWT for every function (local-stack/platform_jwt_check.ts). Each function
 * checks its callers itself, so config.toml turns the platform's check off for every one.
 */
import assert from "node:assert/strict";
import { parse as parseToml } from "smol-toml";
import { functionsUp, type GatewayProcess, stackGateway } from "../support/gateway_process.ts";
import { connect, createUser, mintUserToken } from "../support/local_stack.ts";
import {
  claimsFor,
  createDispatchedRun,
  send,
  signInDatabase,
} from "../support/signed_requests.ts";
import { functionNames } from "../../local-stack/gateway_flags.ts";

const repo = new URL("../..", import.meta.url).pathname;
const configPath = `${repo}supabase/config.toml`;
const sql = connect();

function gateway(flags: string[]): Promise<GatewayProcess> {
  return stackGateway(flags);
}

/** config.toml with import-emails' verify_jwt set back to true, in a temporary copy. */
function oldConfig(): string {
  const text = Deno.readTextFileSync(configPath);
  const flipped = text.replace(
    /(\[functions\.import-emails\][^[]*?)verify_jwt = false/,
    "$1verify_jwt = true",
  );
  assert.notEqual(flipped, text, "config.toml has import-emails' verify_jwt = false");
  const dir = Deno.makeTempDirSync({ prefix: "old-config-" });
  Deno.writeTextFileSync(`${dir}/config.toml`, flipped);
  return `${dir}/config.toml`;
}

async function syncNow(target: GatewayProcess, token: string) {
  const response = await fetch(`${target.functionsUrl}/import-emails`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: "{}",
  });
  return {
    status: response.status,
    type: response.headers.get("content-type"),
    body: await response.text(),
  };
}

Deno.test("config.toml: every function turns the platform's verify_jwt off", () => {
  const toml = parseToml(Deno.readTextFileSync(configPath)) as {
    functions: Record<string, { verify_jwt?: boolean }>;
  };
  for (const name of functionNames(`${repo}supabase/functions`)) {
    // Unset means true on Supabase.
    assert.equal(toml.functions[name]?.verify_jwt, false, name);
  }
});

Deno.test("hosted-asymmetric: sync now with the user's ES256 token reaches the function; with the old verify_jwt = true the platform refuses it", async () => {
  const userId = await createUser(sql, "jwt-check");
  const token = await mintUserToken(userId);
  let target = await gateway(["--mode", "hosted-asymmetric"]);
  try {
    assert.ok(await functionsUp(target), target.output());
    const accepted = await syncNow(target, token);
    assert.equal(accepted.status, 202, accepted.body);
  } finally {
    await target.stop();
  }
  target = await gateway(["--mode", "hosted-asymmetric", "--config", oldConfig()]);
  try {
    assert.ok(await functionsUp(target), target.output());
    // A minute later would be 429 from the function; the platform answers first.
    assert.deepEqual(await syncNow(target, token), {
      status: 401,
      type: "application/json",
      body: '{"code":401,"message":"Invalid JWT"}',
    });
    const runs = await sql`select count(*)::int as n from auto_sync.runs where user_id = ${userId}`;
    assert.equal(runs[0].n, 1, "only the first gateway's sync now made a run");
  } finally {
    await target.stop();
    await sql`delete from auth.users where id = ${userId}`;
  }
});

Deno.test("self-hosted with the main router's VERIFY_JWT=true: pg_cron's signed request and ES256 tokens are refused before any function runs", async () => {
  const userId = await createUser(sql, "jwt-check-self");
  const target = await gateway(["--mode", "self-hosted", "--verify-jwt", "true"]);
  try {
    assert.ok(await functionsUp(target), target.output());
    const runId = await createDispatchedRun(sql, userId);
    const signed = await signInDatabase(sql, claimsFor(userId, runId));
    const response = await send(signed, { url: `${target.functionsUrl}/cron-auto-sync` });
    assert.equal(response.status, 401);
    assert.equal(response.headers.get("sb-error-code"), "UNAUTHORIZED_NO_AUTH_HEADER");
    assert.deepEqual(await response.json(), {
      code: "UNAUTHORIZED_NO_AUTH_HEADER",
      message: "Missing authorization header",
      msg: "Missing authorization header",
    });
    const [run] = await sql`select status from auto_sync.runs where id = ${runId}`;
    assert.equal(run.status, "dispatched", "the function never saw it");
    // The compose file gives the router no SUPABASE_JWKS: asymmetric tokens cannot pass.
    const es256 = await syncNow(target, await mintUserToken(userId));
    assert.equal(es256.status, 401);
    assert.match(es256.body, /UNAUTHORIZED_ASYMMETRIC_JWT/);
  } finally {
    await target.stop();
    await sql`delete from auth.users where id = ${userId}`;
  }
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
