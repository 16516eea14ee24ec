/**
 * The local authorization server (real oidc-provider, local-stack/oauth/) behaves like the
 * providers the importer will meet: Google's offline access and non-rotating refresh tokens,
 * Microsoft's rotation with reuse detection, PKCE required, introspection for Dovecot only.
 * Needs the running stack (scripts/stack start).
 */
import assert from "node:assert/strict";
import { createImapUser } from "../support/imap.ts";
import {
  authorizationRequest,
  connectWithCode,
  introspect,
  oauthRedirectUri,
  signInAndConsent,
  tokenRequest,
} from "../support/oauth.ts";

const refresh = (clientId: string, refreshToken: string) =>
  tokenRequest(clientId, { grant_type: "refresh_token", refresh_token: refreshToken });

Deno.test("Google shape: offline access with consent; the refresh token does not rotate", async () => {
  const user = await createImapUser();
  const tokens = await connectWithCode("google-shape", user);
  assert.equal(tokens.token_type, "Bearer");
  assert.equal(typeof tokens.refresh_token, "string");
  assert.equal(tokens.scope, "openid email https://mail.google.com/");
  const first = await refresh("google-shape", tokens.refresh_token as string);
  assert.equal(first.status, 200);
  assert.equal(first.body.refresh_token, tokens.refresh_token, "the same refresh token comes back");
  assert.notEqual(first.body.access_token, tokens.access_token);
  const second = await refresh("google-shape", tokens.refresh_token as string);
  assert.equal(second.status, 200, "and it can be used again");

  const online = await connectWithCode("google-shape", user, { prompt: undefined });
  assert.equal(online.refresh_token, undefined, "no refresh token without prompt=consent");
  const notOffline = await connectWithCode("google-shape", user, { access_type: undefined });
  assert.equal(notOffline.refresh_token, undefined, "no refresh token without access_type=offline");
});

Deno.test("Microsoft shape: each refresh rotates; reusing an old refresh token revokes the grant", async () => {
  const user = await createImapUser();
  const tokens = await connectWithCode("microsoft-shape", user);
  const old = tokens.refresh_token as string;
  const rotated = await refresh("microsoft-shape", old);
  assert.equal(rotated.status, 200);
  const newer = rotated.body.refresh_token as string;
  assert.ok(newer && newer !== old, "a new refresh token");

  const reuse = await refresh("microsoft-shape", old);
  assert.equal(reuse.status, 400);
  assert.equal(reuse.body.error, "invalid_grant");
  const afterReuse = await refresh("microsoft-shape", newer);
  assert.equal(
    afterReuse.body.error,
    "invalid_grant",
    "the newest refresh token died with the grant",
  );
  const access = await introspect(rotated.body.access_token as string);
  assert.equal(access.body.active, false, "and so did its access token");

  const online = await connectWithCode("microsoft-shape", user, { prompt: undefined });
  assert.equal(online.refresh_token, undefined, "offline_access needs prompt=consent");
});

Deno.test("PKCE is required, with S256, and the verifier must match", async () => {
  const user = await createImapUser();
  for (const params of [{ code_challenge: undefined }, { code_challenge_method: "plain" }]) {
    const request = await authorizationRequest("microsoft-shape", params);
    const back = await signInAndConsent(request.url, user);
    assert.equal(back.origin + back.pathname, oauthRedirectUri);
    assert.equal(back.searchParams.get("error"), "invalid_request", JSON.stringify(params));
    assert.equal(back.searchParams.get("code"), null);
  }
  const request = await authorizationRequest("google-shape");
  const back = await signInAndConsent(request.url, user);
  const wrong = await tokenRequest("google-shape", {
    grant_type: "authorization_code",
    code: back.searchParams.get("code")!,
    redirect_uri: oauthRedirectUri,
    code_verifier: "x".repeat(43),
  });
  assert.equal(wrong.body.error, "invalid_grant");
  assert.equal(wrong.body.access_token, undefined);
});

Deno.test("a wrong password gets no code", async () => {
  const user = await createImapUser();
  const request = await authorizationRequest("google-shape");
  await assert.rejects(
    () => signInAndConsent(request.url, { ...user, password: "not-it" }),
    /said 401/,
  );
});

Deno.test("introspection: Dovecot's client, access tokens only, with the login name", async () => {
  const user = await createImapUser();
  const tokens = await connectWithCode("google-shape", user);
  const access = await introspect(tokens.access_token as string);
  assert.equal(access.body.active, true);
  assert.equal(access.body.email, user.username, "the name Dovecot logs in as");
  const refreshToken = await introspect(tokens.refresh_token as string);
  assert.equal(refreshToken.body.active, false, "a refresh token is no login");
  const byMailClient = await introspect(tokens.access_token as string, "google-shape");
  assert.notEqual(byMailClient.body.active, true, "only Dovecot may introspect");
});
