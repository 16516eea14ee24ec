import assert from "node:assert/strict";
import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from "jose";
import { createMemoryLogger } from "../platform/log.ts";
import { importEmailsConfig } from "../platform/config.ts";
import { createUserAuthenticator } from "./user_auth.ts";

const NOW = 1_800_000_000; // unix seconds of the injected clock
const USER_ID = "6a1f2e3d-4c5b-4a69-8b7c-1d2e3f4a5b6c";
/** What a verified token of USER_ID (not signed in anonymously) yields. */
const SIGNED_IN = { userId: USER_ID, isAnonymous: false };
const KID = "test-key-1";
const LEGACY_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";
const ANON_KEY = "anon-key-of-the-project";
const clock = (seconds = NOW) => new Date(seconds * 1000);

const projectKeys = await generateKeyPair("ES256", { extractable: true });
const otherKeys = await generateKeyPair("ES256", { extractable: true });
const publicJwk = {
  ...(await exportJWK(projectKeys.publicKey)),
  kid: KID,
  alg: "ES256",
  use: "sig",
};
/** SUPABASE_JWKS as hosted projects inject it: a bare array of the public keys. */
const JWKS = JSON.stringify([publicJwk]);

/**
 * Supabase Auth as the library reaches it at SUPABASE_URL (a stand-in for these unit
 * tests; tests/platform/platform_modes_test.ts runs the real HTTP path on the stack): the JWKS
 * endpoint, and /user, which accepts a token signed with the legacy secret for a
 * request carrying the project's API key.
 */
function authServer(published: object[] = [publicJwk], seconds = NOW) {
  const requests: string[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const { pathname } = new URL(request.url);
    requests.push(pathname);
    if (pathname === "/auth/v1/.well-known/jwks.json") return Response.json({ keys: published });
    if (pathname !== "/auth/v1/user") return Response.json({ msg: "Not found" }, { status: 404 });
    if (request.headers.get("apikey") !== ANON_KEY) {
      return Response.json({ message: "Invalid API key" }, { status: 401 });
    }
    const token = request.headers.get("authorization")?.replace(/^Bearer /, "") ?? "";
    try {
      const { payload } = await jwtVerify(token, new TextEncoder().encode(LEGACY_SECRET), {
        algorithms: ["HS256"],
        currentDate: clock(seconds),
      });
      return Response.json({ id: payload.sub, aud: payload.aud, role: payload.role });
    } catch {
      return Response.json({ code: 403, error_code: "bad_jwt", msg: "invalid JWT" }, {
        status: 403,
      });
    }
  };
  return { fetch, requests };
}

// supabase-js caches the JWKS it fetched per project URL, across clients: a fresh
// project ref per authenticator keeps one test's keys out of the next.
type AuthEnv = Record<string, string | undefined>;
const hostedEnv = (changes: AuthEnv = {}): AuthEnv => ({
  SUPABASE_URL: `https://${crypto.randomUUID().slice(0, 20)}.supabase.test`,
  SUPABASE_ANON_KEY: ANON_KEY,
  SUPABASE_JWKS: JWKS,
  ...changes,
});

/** The authenticator import-emails builds from this environment (parsed by config.ts). */
const authenticator = (env: AuthEnv, options?: Parameters<typeof createUserAuthenticator>[1]) =>
  createUserAuthenticator(
    importEmailsConfig({ SUPABASE_DB_URL: "postgresql://db", ...env }).auth,
    options,
  );

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
/** A hosted project with asymmetric signing keys (SUPABASE_JWKS holds the ES256 key). */
const jwksAuth = (seconds = NOW) =>
  authenticator(hostedEnv(), {
    now: () => clock(seconds),
    ...authServer([publicJwk], seconds),
  });
/** A hosted project still on the legacy HS256 secret: SUPABASE_JWKS is an empty array. */
const legacyAuth = () =>
  authenticator(hostedEnv({ SUPABASE_JWKS: "[]" }), {
    now: () => clock(),
    ...authServer([]),
  });

// --- SUPABASE_JWKS (asymmetric keys) ---

Deno.test("a valid ES256 user token yields its user id", async () => {
  assert.deepEqual(await jwksAuth()(bearer(await es256Token())), SIGNED_IN);
});

Deno.test("the token's email and sign-in providers come along (the OAuth handover checks them)", async () => {
  const claims = userClaims({
    email: "ada@example.test",
    app_metadata: { provider: "google", providers: ["google", "email"] },
  });
  assert.deepEqual(await jwksAuth()(bearer(await es256Token(claims))), {
    ...SIGNED_IN,
    email: "ada@example.test",
    providers: ["google", "email"],
  });
  // Odd shapes of these optional claims are left out, never a refusal of the user.
  const odd = userClaims({ email: 42, app_metadata: { providers: "google" } });
  assert.deepEqual(await jwksAuth()(bearer(await es256Token(odd))), SIGNED_IN);
});

Deno.test("an expired token is refused, using the injected clock", async () => {
  const token = await es256Token();
  assert.deepEqual(await jwksAuth(NOW + 3599)(bearer(token)), SIGNED_IN);
  assert.equal(await jwksAuth(NOW + 3600)(bearer(token)), null);
  assert.equal(await jwksAuth()(bearer(await es256Token(userClaims({ exp: NOW - 1 })))), null);
});

Deno.test("SUPABASE_JWKS as a bare array (hosted) or a key set (CLI) verifies locally, no network", async () => {
  for (const value of [JWKS, JSON.stringify({ keys: [publicJwk] })]) {
    const server = authServer();
    const auth = authenticator(hostedEnv({ SUPABASE_JWKS: value }), {
      now: () => clock(),
      fetch: server.fetch,
    });
    assert.deepEqual(await auth(bearer(await es256Token())), SIGNED_IN, value);
    assert.equal(await auth(bearer(await es256Token(userClaims(), otherKeys.privateKey))), null);
    assert.deepEqual(server.requests, [], value);
  }
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

Deno.test("an HS256 token not signed with the project's legacy secret is refused", async () => {
  // Algorithm confusion: HMAC keyed with the public key's JSON, or with the kid.
  assert.equal(await jwksAuth()(bearer(await hs256Token(userClaims(), JWKS))), null);
  assert.equal(await jwksAuth()(bearer(await hs256Token(userClaims(), KID))), null);
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

// --- legacy HS256 secret: Supabase Auth verifies, the function never holds the secret ---

Deno.test("a valid legacy HS256 user token yields its user id", async () => {
  assert.deepEqual(await legacyAuth()(bearer(await hs256Token())), SIGNED_IN);
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

Deno.test("an ES256 token is refused on a project still on the legacy secret", async () => {
  const server = authServer([]);
  const auth = authenticator(hostedEnv({ SUPABASE_JWKS: "[]" }), {
    now: () => clock(),
    fetch: server.fetch,
  });
  assert.equal(await auth(bearer(await es256Token())), null);
  // The project publishes no such key id: refused without asking the JWKS endpoint or Auth.
  assert.deepEqual(server.requests, []);
});

Deno.test("a project with signing keys still accepts legacy tokens Auth accepts", async () => {
  const server = authServer();
  const auth = authenticator(hostedEnv(), { now: () => clock(), fetch: server.fetch });
  assert.deepEqual(await auth(bearer(await es256Token())), SIGNED_IN);
  assert.deepEqual(server.requests, []);
  assert.deepEqual(await auth(bearer(await hs256Token())), SIGNED_IN);
  assert.deepEqual(server.requests, ["/auth/v1/user"]);
  assert.equal(
    await auth(bearer(await hs256Token(userClaims(), "wrong-secret-wrong-secret-wrong-secret"))),
    null,
  );
});

Deno.test("Auth is called with the project's API key, the publishable key first", async () => {
  const publishable = JSON.stringify({ default: ANON_KEY });
  for (const env of [{ SUPABASE_PUBLISHABLE_KEYS: publishable, SUPABASE_ANON_KEY: "stale" }, {}]) {
    const auth = authenticator(hostedEnv({ SUPABASE_JWKS: "[]", ...env }), {
      now: () => clock(),
      fetch: authServer([]).fetch,
    });
    assert.deepEqual(await auth(bearer(await hs256Token())), SIGNED_IN);
  }
  const wrongKey = authenticator(hostedEnv({ SUPABASE_ANON_KEY: "wrong" }), {
    now: () => clock(),
    fetch: authServer([]).fetch,
  });
  assert.equal(await wrongKey(bearer(await hs256Token())), null);
});

Deno.test("the default publishable key is preferred, another one or the anon key serves", async () => {
  const cases: [AuthEnv, boolean][] = [
    [{ SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ web: "other", default: ANON_KEY }) }, true],
    [{ SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ web: ANON_KEY }) }, true],
    [{ SUPABASE_PUBLISHABLE_KEYS: "{}" }, true], // the anon key
    [{ SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: "", web: "other" }) }, false],
  ];
  for (const [env, accepted] of cases) {
    const auth = authenticator(hostedEnv({ SUPABASE_JWKS: "[]", ...env }), {
      now: () => clock(),
      fetch: authServer([]).fetch,
    });
    assert.deepEqual(
      await auth(bearer(await hs256Token())),
      accepted ? SIGNED_IN : null,
      JSON.stringify(env),
    );
  }
  assert.throws(
    () =>
      authenticator(
        hostedEnv({ SUPABASE_ANON_KEY: undefined, SUPABASE_PUBLISHABLE_KEYS: "{}" }),
      ),
    /Missing SUPABASE_PUBLISHABLE_KEYS or SUPABASE_ANON_KEY/,
  );
});

Deno.test("Auth down refuses the token and logs it, without the token", async () => {
  const log = createMemoryLogger();
  // A token Auth refuses is the caller's business: the app logs the refusal, not this.
  const up = authenticator(hostedEnv({ SUPABASE_JWKS: "[]" }), {
    now: () => clock(),
    fetch: authServer([]).fetch,
    log,
  });
  assert.equal(
    await up(bearer(await hs256Token(userClaims(), "wrong-secret-of-32-characters-at-least"))),
    null,
  );
  assert.equal(log.lines.length, 0);
  for (
    const down of [
      () => Promise.reject(new TypeError("connection refused")),
      () => Promise.resolve(new Response("bad gateway", { status: 502 })),
    ]
  ) {
    const auth = authenticator(hostedEnv({ SUPABASE_JWKS: "[]" }), {
      now: () => clock(),
      fetch: down,
      log,
    });
    const token = await hs256Token();
    assert.equal(await auth(bearer(token)), null);
    assert.ok(log.lines.every((line) => !line.includes(token.split(".")[2])));
  }
  assert.equal(log.lines.length, 2, log.lines.join("\n"));
  assert.match(log.lines[0], /"level":"error".*Supabase Auth did not answer/);
  assert.match(log.lines[1], /"status":502/);
});

Deno.test("a token that cannot be a user's is refused without a call to Auth", async () => {
  const server = authServer([]);
  const auth = authenticator(hostedEnv({ SUPABASE_JWKS: "[]" }), {
    now: () => clock(),
    fetch: server.fetch,
  });
  for (
    const claims of [{ exp: NOW - 1 }, { aud: "anon" }, { role: "anon" }, { sub: "admin" }]
  ) {
    assert.equal(await auth(bearer(await hs256Token(userClaims(claims)))), null);
  }
  assert.deepEqual(server.requests, []);
});

Deno.test("an empty key set (a project on the legacy secret) or none (self-hosted) is accepted", async () => {
  for (const value of ["[]", '{"keys": []}', undefined]) {
    const auth = authenticator(hostedEnv({ SUPABASE_JWKS: value }), {
      now: () => clock(),
      fetch: authServer([]).fetch,
    });
    assert.deepEqual(await auth(bearer(await hs256Token())), SIGNED_IN, String(value));
  }
});

Deno.test("the Bearer scheme name is case-insensitive (RFC 9110)", async () => {
  const token = await es256Token();
  for (const scheme of ["bearer", "BEARER", "Bearer"]) {
    assert.deepEqual(await jwksAuth()(`${scheme} ${token}`), SIGNED_IN, scheme);
  }
});

// --- forged tokens: refused without any outbound call; key rotation still works ---

const SECOND_KID = "test-key-2";
const rotatedKeys = await generateKeyPair("ES256", { extractable: true });
const rotatedJwk = {
  ...(await exportJWK(rotatedKeys.publicKey)),
  kid: SECOND_KID,
  alg: "ES256",
  use: "sig",
};

/** 1,000 tokens that cannot be the project's, of every kind a forger may try. */
async function forgedTokens(): Promise<string[]> {
  const claims = userClaims();
  const header = (value: object) => base64url(value);
  const payload = base64url(claims);
  const valid = await es256Token();
  const kinds: (() => Promise<string> | string)[] = [
    // an unknown key id, new each time (the costly kind before: JWKS fetch + /user)
    () => es256Token(claims, otherKeys.privateKey, crypto.randomUUID()),
    // the project's key id, another key's signature (verified locally, refused)
    () => es256Token(claims, otherKeys.privateKey),
    // no key id at all (supabase-js would ask Auth)
    () =>
      new SignJWT(claims).setProtectedHeader({ alg: "ES256", typ: "JWT" }).sign(
        otherKeys.privateKey,
      ),
    // algorithms Supabase Auth never signs user tokens with
    () => `${header({ alg: "none" })}.${payload}.`,
    () => `${header({ alg: "HS512", kid: KID })}.${payload}.${valid.split(".")[2]}`,
    () => `${header({ alg: "PS256", kid: KID })}.${payload}.${valid.split(".")[2]}`,
    () => `${header({ alg: "RS256", kid: crypto.randomUUID() })}.${payload}.${valid.split(".")[2]}`,
    // malformed
    () => `${valid.split(".")[0]}.!!!.${valid.split(".")[2]}`,
    () => `e30.${payload}.${valid.split(".")[2]}`,
    () => `${header({ alg: "ES256", kid: 7 })}.${payload}.${valid.split(".")[2]}`,
  ];
  const tokens: string[] = [];
  for (let i = 0; i < 1_000; i++) tokens.push(await kinds[i % kinds.length]());
  return tokens;
}

Deno.test("a flood of 1,000 forged tokens makes no outbound call; the user's token still passes", async () => {
  const tokens = await forgedTokens();
  for (
    const [label, env] of [["signing keys", {}], ["legacy secret", {
      SUPABASE_JWKS: "[]",
    }]] as const
  ) {
    const server = authServer(label === "legacy secret" ? [] : [publicJwk]);
    let calls = 0;
    const auth = authenticator(hostedEnv(env), {
      now: () => clock(),
      fetch: (input, init) => {
        calls++;
        return server.fetch(input, init);
      },
    });
    for (const token of tokens) assert.equal(await auth(bearer(token)), null, `${label}: ${token}`);
    assert.equal(calls, 0, `${label}: outbound calls for 1,000 forged tokens`);
    if (label === "signing keys") {
      assert.deepEqual(await auth(bearer(await es256Token())), SIGNED_IN);
      assert.equal(calls, 0);
    }
  }
});

Deno.test("a newly published key id is accepted after one JWKS refresh; unknown ones cost at most one fetch per interval", async () => {
  const server = authServer([publicJwk, rotatedJwk]);
  let seconds = NOW;
  const auth = authenticator(hostedEnv(), {
    now: () => clock(seconds),
    fetch: server.fetch,
    jwksRefreshMs: 60_000,
  });
  const rotated = await es256Token(
    userClaims({ exp: NOW + 36_000 }),
    rotatedKeys.privateKey,
    SECOND_KID,
  );
  // At boot SUPABASE_JWKS is fresh: a key id it lacks waits for the interval.
  assert.equal(await auth(bearer(rotated)), null);
  assert.deepEqual(server.requests, []);
  seconds += 61;
  // Many requests at once share the one refresh.
  const answers = await Promise.all(Array.from({ length: 50 }, () => auth(bearer(rotated))));
  assert.ok(answers.every((answer) => answer?.userId === USER_ID));
  assert.deepEqual(server.requests, ["/auth/v1/.well-known/jwks.json"]);
  // The new key is known now; the old one still is; unknown ids cost nothing this interval.
  assert.deepEqual(
    await auth(bearer(await es256Token(userClaims({ exp: NOW + 36_000 })))),
    SIGNED_IN,
  );
  for (let i = 0; i < 200; i++) {
    const forged = await es256Token(
      userClaims({ exp: NOW + 36_000 }),
      otherKeys.privateKey,
      crypto.randomUUID(),
    );
    assert.equal(await auth(bearer(forged)), null);
  }
  assert.equal(server.requests.length, 1);
  // An hour of a steady flood: one fetch per interval at most.
  for (let minute = 0; minute < 60; minute++) {
    seconds += 30;
    for (let i = 0; i < 5; i++) {
      const forged = await es256Token(
        userClaims({ exp: NOW + 36_000 }),
        otherKeys.privateKey,
        crypto.randomUUID(),
      );
      assert.equal(await auth(bearer(forged)), null);
    }
  }
  assert.ok(server.requests.length <= 1 + 30, `${server.requests.length} fetches`);
  assert.ok(
    server.requests.every((path) => path === "/auth/v1/.well-known/jwks.json"),
    "never /user",
  );
});

Deno.test("Auth's JWKS endpoint down: the rotated key is refused (fail closed), no retry storm", async () => {
  let calls = 0;
  let seconds = NOW;
  const auth = authenticator(hostedEnv(), {
    now: () => clock(seconds),
    fetch: () => {
      calls++;
      return Promise.reject(new TypeError("connection refused"));
    },
  });
  const rotated = await es256Token(
    userClaims({ exp: NOW + 3600 }),
    rotatedKeys.privateKey,
    SECOND_KID,
  );
  seconds += 61;
  for (let i = 0; i < 20; i++) assert.equal(await auth(bearer(rotated)), null);
  assert.equal(calls, 1);
  assert.deepEqual(await auth(bearer(await es256Token())), SIGNED_IN);
});

Deno.test("the is_anonymous claim is passed on: true only when the verified token says true", async () => {
  const auth = jwksAuth();
  assert.deepEqual(await auth(bearer(await es256Token(userClaims({ is_anonymous: true })))), {
    userId: USER_ID,
    isAnonymous: true,
  });
  assert.deepEqual(
    await auth(bearer(await es256Token(userClaims({ is_anonymous: false })))),
    SIGNED_IN,
  );
  assert.deepEqual(await auth(bearer(await es256Token())), SIGNED_IN, "no claim: not anonymous");
  // A claim that is not a boolean is not Supabase Auth's: the token is refused.
  assert.equal(await auth(bearer(await es256Token(userClaims({ is_anonymous: "true" })))), null);
});
