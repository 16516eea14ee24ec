import assert from "node:assert/strict";
import { type CryptoKey, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { createUserAuthenticator } from "./user_auth.ts";

const NOW = 1_800_000_000; // unix seconds of the injected clock
const USER_ID = "6a1f2e3d-4c5b-4a69-8b7c-1d2e3f4a5b6c";
const KID = "test-key-1";
const LEGACY_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";
const clock = (seconds = NOW) => ({ now: () => new Date(seconds * 1000) });

const projectKeys = await generateKeyPair("ES256", { extractable: true });
const otherKeys = await generateKeyPair("ES256", { extractable: true });
const JWKS = JSON.stringify({
  keys: [{ ...(await exportJWK(projectKeys.publicKey)), kid: KID, alg: "ES256", use: "sig" }],
});

function userClaims(changes: JWTPayload = {}): JWTPayload {
  return {
    sub: USER_ID,
    role: "authenticated",
    aud: "authenticated",
    iat: NOW,
    exp: NOW + 3600,
    ...changes,
  };
}

/** An ES256 token as Supabase Auth issues it (signed by the project's key unless told). */
function es256Token(
  claims: JWTPayload = userClaims(),
  key: CryptoKey = projectKeys.privateKey,
  kid = KID,
) {
  return new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid, typ: "JWT" }).sign(key);
}

function hs256Token(claims: JWTPayload = userClaims(), secret = LEGACY_SECRET) {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(
    new TextEncoder().encode(secret),
  );
}

function base64url(value: unknown): string {
  return btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

const bearer = (token: string) => `Bearer ${token}`;
const jwksAuth = (seconds = NOW) =>
  createUserAuthenticator({ SUPABASE_JWKS: JWKS }, clock(seconds));
const legacyAuth = () => createUserAuthenticator({ SUPABASE_JWT_SECRET: LEGACY_SECRET }, clock());

// --- SUPABASE_JWKS (asymmetric keys) ---

Deno.test("a valid ES256 user token yields its user id", async () => {
  assert.deepEqual(await jwksAuth()(bearer(await es256Token())), { userId: USER_ID });
});

Deno.test("an expired token is refused, using the injected clock", async () => {
  const token = await es256Token();
  assert.deepEqual(await jwksAuth(NOW + 3599)(bearer(token)), { userId: USER_ID });
  assert.equal(await jwksAuth(NOW + 3600)(bearer(token)), null);
  assert.equal(await jwksAuth()(bearer(await es256Token(userClaims({ exp: NOW - 1 })))), null);
});

Deno.test("SUPABASE_JWKS as hosted projects inject it, a bare array of keys, is accepted", async () => {
  const bareArray = JSON.stringify(JSON.parse(JWKS).keys);
  const auth = createUserAuthenticator({ SUPABASE_JWKS: bareArray }, clock());
  assert.deepEqual(await auth(bearer(await es256Token())), { userId: USER_ID });
  assert.equal(await auth(bearer(await es256Token(userClaims(), otherKeys.privateKey))), null);
});

Deno.test("a token without exp is refused", async () => {
  const claims = userClaims();
  delete claims.exp;
  assert.equal(await jwksAuth()(bearer(await es256Token(claims))), null);
});

Deno.test("a token for another audience is refused", async () => {
  for (const aud of ["anon", "service_role", "cron-auto-sync"]) {
    assert.equal(await jwksAuth()(bearer(await es256Token(userClaims({ aud })))), null, aud);
  }
  const claims = userClaims();
  delete claims.aud;
  assert.equal(await jwksAuth()(bearer(await es256Token(claims))), null, "no aud");
});

Deno.test("anon and service_role tokens are refused", async () => {
  for (const role of ["anon", "service_role", "postgres", "Authenticated"]) {
    assert.equal(await jwksAuth()(bearer(await es256Token(userClaims({ role })))), null, role);
  }
  const claims = userClaims();
  delete claims.role;
  assert.equal(await jwksAuth()(bearer(await es256Token(claims))), null, "no role");
});

Deno.test("a token whose sub is not a uuid is refused", async () => {
  for (const sub of ["admin", "", "6a1f2e3d4c5b4a698b7c1d2e3f4a5b6c"]) {
    assert.equal(await jwksAuth()(bearer(await es256Token(userClaims({ sub })))), null, sub);
  }
  const claims = userClaims();
  delete claims.sub;
  assert.equal(await jwksAuth()(bearer(await es256Token(claims))), null, "no sub");
});

Deno.test("a token signed by another key is refused, even with the project's kid", async () => {
  assert.equal(
    await jwksAuth()(bearer(await es256Token(userClaims(), otherKeys.privateKey))),
    null,
  );
  assert.equal(
    await jwksAuth()(bearer(await es256Token(userClaims(), otherKeys.privateKey, "other"))),
    null,
  );
});

Deno.test("a token with a tampered payload is refused", async () => {
  const [header, , signature] = (await es256Token()).split(".");
  const forged = [
    header,
    base64url(userClaims({ sub: "00000000-0000-4000-8000-000000000000" })),
    signature,
  ];
  assert.equal(await jwksAuth()(bearer(forged.join("."))), null);
});

Deno.test("an unsigned alg none token is refused", async () => {
  const header = base64url({ alg: "none", typ: "JWT" });
  const payload = base64url(userClaims());
  assert.equal(await jwksAuth()(bearer(`${header}.${payload}.`)), null);
  assert.equal(await jwksAuth()(bearer(`${header}.${payload}.AAAA`)), null);
});

Deno.test("an HS256 token is refused when only SUPABASE_JWKS is configured", async () => {
  assert.equal(await jwksAuth()(bearer(await hs256Token())), null);
  // Algorithm confusion: HMAC keyed with the public key's JSON.
  assert.equal(await jwksAuth()(bearer(await hs256Token(userClaims(), JWKS))), null);
});

Deno.test("a malformed or missing Authorization header is refused", async () => {
  const token = await es256Token();
  for (
    const header of [
      null,
      "",
      "Basic x",
      "Basic dXNlcjpwYXNz",
      "Bearer",
      "Bearer ",
      token,
      `Bearer ${token} x`,
      `Bearer  ${token}`,
      `Token ${token}`,
    ]
  ) {
    assert.equal(await jwksAuth()(header), null, JSON.stringify(header));
  }
});

// --- SUPABASE_JWT_SECRET (legacy HS256) ---

Deno.test("a valid legacy HS256 user token yields its user id", async () => {
  assert.deepEqual(await legacyAuth()(bearer(await hs256Token())), { userId: USER_ID });
});

Deno.test("a legacy token signed with another secret is refused", async () => {
  const token = await hs256Token(userClaims(), "another-secret-that-is-also-at-least-32-chars");
  assert.equal(await legacyAuth()(bearer(token)), null);
});

Deno.test("legacy tokens are held to the same claims: expiry, audience, role", async () => {
  for (
    const changes of [{ exp: NOW - 1 }, { aud: "anon" }, { role: "service_role" }, { sub: "admin" }]
  ) {
    assert.equal(
      await legacyAuth()(bearer(await hs256Token(userClaims(changes)))),
      null,
      JSON.stringify(changes),
    );
  }
});

Deno.test("an ES256 token is refused when only the legacy secret is configured", async () => {
  assert.equal(await legacyAuth()(bearer(await es256Token())), null);
});

Deno.test("with both configured, tokens of either kind are accepted", async () => {
  const auth = createUserAuthenticator(
    { SUPABASE_JWKS: JWKS, SUPABASE_JWT_SECRET: LEGACY_SECRET },
    clock(),
  );
  assert.deepEqual(await auth(bearer(await es256Token())), { userId: USER_ID });
  assert.deepEqual(await auth(bearer(await hs256Token())), { userId: USER_ID });
  assert.equal(
    await auth(bearer(await hs256Token(userClaims(), "wrong-secret-wrong-secret-wrong-secret"))),
    null,
  );
});

// --- configuration errors at construction ---

Deno.test("no SUPABASE_JWKS and no SUPABASE_JWT_SECRET throws at construction", () => {
  assert.throws(() => createUserAuthenticator({}), /SUPABASE_JWKS/);
  assert.throws(() => createUserAuthenticator({ SUPABASE_JWKS: "", SUPABASE_JWT_SECRET: "" }));
});

Deno.test("an invalid SUPABASE_JWKS throws at construction", () => {
  for (const value of ["not json", "{", '{"keys": "nope"}', '{"foo": 1}', "1", "null"]) {
    assert.throws(
      () => createUserAuthenticator({ SUPABASE_JWKS: value }),
      /Invalid SUPABASE_JWKS/,
      value,
    );
  }
});

Deno.test("a key set without keys throws at construction instead of refusing every user later", () => {
  for (const value of ['{"keys": []}', "[]", "{}", '{"keys": {}}']) {
    assert.throws(
      () => createUserAuthenticator({ SUPABASE_JWKS: value }),
      /Invalid SUPABASE_JWKS/,
      value,
    );
  }
});

Deno.test("the Bearer scheme name is case-insensitive (RFC 9110)", async () => {
  const token = await es256Token();
  for (const scheme of ["bearer", "BEARER", "Bearer"]) {
    assert.deepEqual(await jwksAuth()(`${scheme} ${token}`), { userId: USER_ID }, scheme);
  }
});
