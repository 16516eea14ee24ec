/**
 * import-emails verifies users the platform's way in each project mode, on the
 * stack's database with real HTTP, each gateway giving the function only what that
 * mode provides (local-stack/platform_env.ts) and nothing under a reserved name:
 *   hosted-asymmetric  ES256 tokens, verified in the function against SUPABASE_JWKS
 *   hosted-legacy      HS256 tokens, verified by Auth (/auth/v1/user); the function
 *                      never holds the JWT secret
 *   self-hosted        HS256 tokens behind the `main` router with VERIFY_JWT=false:
 *                      the function's own check is the only one
 * Expired, wrong-audience, anon-role and other-project tokens are refused in each.
 */
import assert from "node:assert/strict";
import { generateKeyPair, importJWK, type JWTPayload, SignJWT } from "jose";
import { functionsUp, type GatewayProcess, stackGateway } from "../support/gateway_process.ts";
import { connect, createUser, stateDir } from "../support/local_stack.ts";
import { type ProjectMode, readProject } from "../../local-stack/project.ts";

const MODES: ProjectMode[] = ["hosted-asymmetric", "hosted-legacy", "self-hosted"];

const sql = connect();
const project = readProject(`${stateDir}/project.json`);
const otherProject = await generateKeyPair("ES256", { extractable: true });
const OTHER_SECRET = "another-projects-jwt-secret-of-at-least-32-chars";

function claims(userId: string, changes: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return {
    sub: userId,
    role: "authenticated",
    aud: "authenticated",
    iat: now,
    exp: now + 600,
    ...changes,
  };
}

async function es256(payload: JWTPayload, options: { other?: boolean } = {}) {
  const kid = project.signingKey.privateJwk.kid!;
  const key = options.other
    ? otherProject.privateKey
    : await importJWK(project.signingKey.privateJwk, "ES256");
  return await new SignJWT(payload).setProtectedHeader({ alg: "ES256", kid, typ: "JWT" }).sign(key);
}

function hs256(payload: JWTPayload, secret = project.jwtSecret) {
  return new SignJWT(payload).setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(secret));
}

/** What Auth issues in each mode, and the same token from another project. */
const signers: Record<ProjectMode, (payload: JWTPayload, other?: boolean) => Promise<string>> = {
  "hosted-asymmetric": (payload, other) => es256(payload, { other }),
  "hosted-legacy": (payload, other) => hs256(payload, other ? OTHER_SECRET : undefined),
  "self-hosted": (payload, other) => hs256(payload, other ? OTHER_SECRET : undefined),
};

async function post(gateway: GatewayProcess, token: string): Promise<number> {
  const response = await fetch(`${gateway.functionsUrl}/import-emails`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: "{}",
  });
  await response.body?.cancel();
  return response.status;
}

/** A gateway of its own emulating `mode`, on the stack's database, keys and project. */
function modeGateway(mode: ProjectMode) {
  return stackGateway(["--mode", mode]);
}

for (const mode of MODES) {
  Deno.test(`${mode}: a user's own token is accepted; expired, wrong-audience, anon and other-project tokens are refused`, async () => {
    const gateway = await modeGateway(mode);
    try {
      assert.ok(await functionsUp(gateway), gateway.output());
      const sign = signers[mode];
      const userId = await createUser(sql, `mode-${mode}`);
      const now = Math.floor(Date.now() / 1000);

      const refused: Record<string, string> = {
        expired: await sign(claims(userId, { iat: now - 7200, exp: now - 3600 })),
        "wrong audience": await sign(claims(userId, { aud: "service_role" })),
        "anon role": await sign(claims(userId, { role: "anon" })),
        "the project's anon key": project.anonKey,
        "the project's service_role key": project.serviceRoleKey,
        "another project's token": await sign(claims(userId), true),
        "another project's key with an unknown kid": await new SignJWT(claims(userId))
          .setProtectedHeader({ alg: "ES256", kid: "unknown", typ: "JWT" })
          .sign(otherProject.privateKey),
      };
      for (const [label, token] of Object.entries(refused)) {
        assert.equal(await post(gateway, token), 401, `${mode}: ${label}`);
      }
      assert.equal(await post(gateway, await sign(claims(userId))), 202, mode);
      const [run] = await sql`
        select trigger from auto_sync.runs where user_id = ${userId}`;
      assert.equal(run?.trigger, "manual");
    } finally {
      await gateway.stop();
    }
  });
}

Deno.test("hosted-legacy: Auth refuses a well-signed token for a user that does not exist", async () => {
  const gateway = await modeGateway("hosted-legacy");
  try {
    assert.ok(await functionsUp(gateway), gateway.output());
    assert.equal(await post(gateway, await hs256(claims(crypto.randomUUID()))), 401);
  } finally {
    await gateway.stop();
  }
});

Deno.test("clean up: remove this file's users and close the database connection", async () => {
  await sql`delete from auth.users where email like 'mode-%'`;
  await sql.end();
});
