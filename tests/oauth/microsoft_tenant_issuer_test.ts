/**
 * Microsoft's multi-tenant ID tokens (tenant common / organizations / consumers): `iss` is
 * `.../{tid}/v2.0` for the signed-in user's tenant and `email` may be absent. A real loopback
 * token endpoint answers with ID tokens signed here (jose, RS256); the token client must
 * accept the issuer built from the token's own GUID `tid` and refuse every other issuer, a
 * missing or non-GUID tid, and a wrong audience. Needs no stack.
 */
import assert from "node:assert/strict";
import { generateKeyPair, SignJWT } from "jose";
import { TokenRequestError } from "../../functions-shared/oauth/oauth_errors.ts";
import { microsoftProvider, type OAuthProvider } from "../../functions-shared/oauth/providers.ts";
import { mailboxAddress, TENANT_PLACEHOLDER } from "../../functions-shared/oauth/tenant_issuer.ts";
import { createTokenClient } from "../../functions-shared/oauth/token_client.ts";

const clientId = "00000000-aaaa-bbbb-cccc-000000000001";
const tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const { privateKey } = await generateKeyPair("RS256");

type Claims = Record<string, unknown>;

/** A token endpoint that answers every code with an ID token of the given claims. */
async function exchangeWith(claims: (base: string) => Claims) {
  let base = "";
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async () => {
    const idToken = await new SignJWT(claims(base))
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(privateKey);
    return Response.json({
      access_token: "at-1",
      token_type: "Bearer",
      expires_in: 3600,
      refresh_token: "rt-1",
      id_token: idToken,
    });
  });
  base = `http://127.0.0.1:${server.addr.port}`;
  const provider: OAuthProvider = {
    ...microsoftProvider(),
    issuer: `${base}/${TENANT_PLACEHOLDER}/v2.0`,
    authorizationEndpoint: `${base}/common/oauth2/v2.0/authorize`,
    tokenEndpoint: `${base}/common/oauth2/v2.0/token`,
    allowLoopbackHttp: true,
  };
  const client = createTokenClient(provider, { clientId, clientSecret: "s" });
  try {
    return await client.exchangeCode({
      url: new URL(`${base}/cb?code=c1&state=s1`),
      expectedState: "s1",
      codeVerifier: "v".repeat(43),
      redirectUri: `${base}/cb`,
    });
  } finally {
    await server.shutdown();
  }
}

const account = (base: string, overrides: Claims = {}): Claims => ({
  iss: `${base}/${tid}/v2.0`,
  aud: clientId,
  sub: "subject-1",
  tid,
  preferred_username: "ada@contoso.example",
  ...overrides,
});

Deno.test("Microsoft common: the preset's issuer is the {tenantid} template; a tenant keeps its own", () => {
  for (const tenant of ["common", "organizations", "consumers"]) {
    assert.equal(
      microsoftProvider({ tenant }).issuer,
      "https://login.microsoftonline.com/{tenantid}/v2.0",
    );
  }
  assert.equal(
    microsoftProvider({ tenant: tid }).issuer,
    `https://login.microsoftonline.com/${tid}/v2.0`,
  );
});

Deno.test("Microsoft common: iss of the token's own GUID tid is accepted; no email, preferred_username is the address", async () => {
  const { idTokenClaims, tokens } = await exchangeWith((base) => account(base));
  assert.equal(tokens.refreshToken, "rt-1");
  assert.equal(idTokenClaims?.sub, "subject-1");
  assert.equal(idTokenClaims?.email, undefined, "email is never filled from preferred_username");
  assert.equal(idTokenClaims?.preferredUsername, "ada@contoso.example");
  assert.equal(mailboxAddress(idTokenClaims!), "ada@contoso.example");
});

Deno.test("Microsoft common: an issuer of another tenant, the template itself, or no tid is refused", async () => {
  const other = "11111111-2222-3333-4444-555555555555";
  const cases: Record<string, (base: string) => Claims> = {
    "iss of another tenant than tid": (base) => account(base, { iss: `${base}/${other}/v2.0` }),
    "iss left as the template": (base) => account(base, { iss: `${base}/{tenantid}/v2.0` }),
    "tid missing": (base) => account(base, { tid: undefined }),
    "tid not a GUID": (base) => account(base, { tid: "common", iss: `${base}/common/v2.0` }),
    "tid with a path": (base) => account(base, { tid: `${tid}/x`, iss: `${base}/${tid}/x/v2.0` }),
    "another app's token": (base) => account(base, { aud: "someone-else" }),
    "a foreign issuer": () => account("https://evil.example"),
  };
  for (const [name, claims] of Object.entries(cases)) {
    await assert.rejects(
      () => exchangeWith(claims),
      (error: unknown) => error instanceof TokenRequestError && error.kind === "invalid_response",
      name,
    );
  }
});

Deno.test("mailbox address: email first; preferred_username only when it is an address", () => {
  assert.equal(
    mailboxAddress({ email: "a@x.example", preferredUsername: "b@y.example" }),
    "a@x.example",
  );
  assert.equal(mailboxAddress({ preferredUsername: "b@y.example" }), "b@y.example");
  assert.equal(mailboxAddress({ preferredUsername: "+15551234567" }), undefined);
  assert.equal(mailboxAddress({ preferredUsername: "ada lovelace@x.example" }), undefined);
  assert.equal(mailboxAddress({}), undefined);
});
