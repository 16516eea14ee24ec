import assert from "node:assert/strict";
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { hostedJwtCheck, mainRouterJwtCheck, routerKeySet } from "./platform_jwt_check.ts";

const SECRET = "the-legacy-jwt-secret-of-at-least-32-characters";
const KID = "signing-key-1";
const keys = await generateKeyPair("ES256", { extractable: true });
const publicJwk = { ...(await exportJWK(keys.publicKey)), kid: KID, alg: "ES256", use: "sig" };
const claims: JWTPayload = {
  sub: crypto.randomUUID(),
  role: "authenticated",
  aud: "authenticated",
};

const hs256 = (secret = SECRET) =>
  new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setExpirationTime("5m")
    .sign(new TextEncoder().encode(secret));
const es256 = () =>
  new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: KID, typ: "JWT" })
    .setExpirationTime("5m").sign(keys.privateKey);

const request = (authorization?: string, method = "POST") =>
  new Request("http://gateway/functions/v1/f", {
    method,
    headers: authorization ? { authorization } : {},
  });

async function answer(response: Response | null) {
  assert.ok(response, "refused");
  return {
    status: response.status,
    body: await response.json(),
    type: response.headers.get("content-type"),
    code: response.headers.get("sb-error-code"),
  };
}

Deno.test("hosted verify_jwt: a legacy HS256 token of the project passes, any role", async () => {
  assert.equal(
    await hostedJwtCheck(request(`Bearer ${await hs256()}`), { legacySecret: SECRET }),
    null,
  );
  const anon = await new SignJWT({ role: "anon" }).setProtectedHeader({ alg: "HS256" })
    .sign(new TextEncoder().encode(SECRET));
  assert.equal(await hostedJwtCheck(request(`Bearer ${anon}`), { legacySecret: SECRET }), null);
});

Deno.test("hosted verify_jwt refuses the project's own ES256 user token: 401 Invalid JWT", async () => {
  assert.deepEqual(
    await answer(
      await hostedJwtCheck(request(`Bearer ${await es256()}`), { legacySecret: SECRET }),
    ),
    {
      status: 401,
      body: { code: 401, message: "Invalid JWT" },
      type: "application/json",
      code: null,
    },
  );
});

Deno.test("hosted verify_jwt: no header, another secret, garbage; preflights pass", async () => {
  const check = (req: Request) => hostedJwtCheck(req, { legacySecret: SECRET });
  assert.deepEqual((await answer(await check(request()))).body, {
    code: 401,
    message: "Missing authorization header",
  });
  for (
    const header of [
      `Bearer ${await hs256("another-secret-of-at-least-32-characters!")}`,
      "Bearer x.y.z",
      "Basic abc",
    ]
  ) {
    assert.deepEqual((await answer(await check(request(header)))).body, {
      code: 401,
      message: "Invalid JWT",
    }, header);
  }
  assert.equal(await check(request(undefined, "OPTIONS")), null);
});

Deno.test("self-hosted main router: HS256 via JWT_SECRET, ES256 only via a {keys} set", async () => {
  const keySet = JSON.stringify({ keys: [publicJwk] });
  assert.equal(
    await mainRouterJwtCheck(request(`Bearer ${await hs256()}`), { jwtSecret: SECRET }),
    null,
  );
  assert.equal(
    await mainRouterJwtCheck(request(`Bearer ${await es256()}`), { jwks: keySet }),
    null,
  );
  // The bare array hosted injects is no key set for the router.
  assert.equal(routerKeySet(JSON.stringify([publicJwk])), null);
  for (const jwks of [JSON.stringify([publicJwk]), undefined]) {
    assert.deepEqual(
      await answer(
        await mainRouterJwtCheck(request(`Bearer ${await es256()}`), { jwtSecret: SECRET, jwks }),
      ),
      {
        status: 401,
        body: { code: "UNAUTHORIZED_ASYMMETRIC_JWT", message: "Invalid JWT", msg: "Invalid JWT" },
        type: "application/json",
        code: "UNAUTHORIZED_ASYMMETRIC_JWT",
      },
    );
  }
});

Deno.test("self-hosted main router: its answers for a missing, malformed or odd token", async () => {
  const check = (req: Request) => mainRouterJwtCheck(req, { jwtSecret: SECRET });
  const none = await new SignJWT(claims).setProtectedHeader({ alg: "HS512" })
    .sign(new TextEncoder().encode(SECRET));
  const cases: [Request, string][] = [
    [request(), "UNAUTHORIZED_NO_AUTH_HEADER"],
    [request("Token abc"), "UNAUTHORIZED_INVALID_JWT_FORMAT"],
    [request(`Bearer ${await hs256()} extra`), "UNAUTHORIZED_INVALID_JWT_FORMAT"],
    [request("Bearer not-a-jwt"), "UNAUTHORIZED_INVALID_JWT_FORMAT"],
    [
      request(`Bearer ${await hs256("another-secret-of-at-least-32-characters!")}`),
      "UNAUTHORIZED_LEGACY_JWT",
    ],
    [request(`Bearer ${none}`), "UNAUTHORIZED_UNSUPPORTED_TOKEN_ALGORITHM"],
  ];
  for (const [req, code] of cases) {
    const got = await answer(await check(req));
    assert.equal(got.status, 401);
    assert.equal(got.code, code);
    assert.equal(got.body.code, code);
  }
  assert.equal(await check(request(undefined, "OPTIONS")), null);
});
