/**
 * The OAuth token client (functions-shared/oauth/) against the real authorization server of
 * the local stack (oidc-provider, shaped like Google and Microsoft) and the real Dovecot:
 * connect by authorization code + PKCE, refresh, rotation with reuse detected, revocation and
 * expiry, each ending where the importer needs it (a working IMAP login, or "reconnect
 * needed"). Needs the running stack (scripts/stack start).
 */
import assert from "node:assert/strict";
import { ImapFlow } from "imapflow";
import {
  ReconnectNeededError,
  TokenRequestError,
} from "../../functions-shared/oauth/oauth_errors.ts";
import {
  discoverProvider,
  googleProfile,
  microsoftProfile,
  type ProviderProfile,
} from "../../functions-shared/oauth/providers.ts";
import { createTokenClient, type TokenClient } from "../../functions-shared/oauth/token_client.ts";
import { createImapUser, IMAP_PORT } from "../support/imap.ts";
import { clientSecret, oauthIssuer, oauthRedirectUri, signInAndConsent } from "../support/oauth.ts";

type User = { username: string; password: string };

/** The local server under a preset's profile (its scopes and parameters), via discovery. */
async function localClient(clientId: string, profile: ProviderProfile): Promise<TokenClient> {
  const provider = await discoverProvider(
    oauthIssuer,
    { ...profile, imap: { host: "127.0.0.1", port: IMAP_PORT } },
    { timeoutMs: 5000, maxBytes: 64 * 1024, allowLoopbackHttp: true },
  );
  return createTokenClient(provider, { clientId, clientSecret: clientSecret(clientId) });
}

async function connect(client: TokenClient, user: User) {
  const request = await client.authorizationUrl({ redirectUri: oauthRedirectUri });
  const callback = await signInAndConsent(request.url, user);
  return await client.exchangeCode({
    url: callback,
    expectedState: request.state,
    codeVerifier: request.codeVerifier,
    redirectUri: oauthRedirectUri,
  });
}

/** Whether Dovecot lets the access token in (it introspects it at the same server). */
async function imapAccepts(username: string, accessToken: string): Promise<boolean> {
  const imap = new ImapFlow({
    host: "127.0.0.1",
    port: IMAP_PORT,
    secure: false,
    doSTARTTLS: false,
    auth: { user: username, accessToken },
    logger: false,
  });
  imap.on("error", () => {});
  try {
    await imap.connect();
    await imap.logout();
    return true;
  } catch (error) {
    if ((error as { authenticationFailed?: boolean }).authenticationFailed) return false;
    throw error;
  }
}

function assertNoToken(error: unknown, tokens: (string | undefined)[]) {
  const message = String((error as Error).message);
  for (const token of tokens) if (token) assert.ok(!message.includes(token), message);
}

Deno.test("Google preset: connect by code + PKCE, the address from the ID token, refresh without rotation", async () => {
  const user = await createImapUser();
  const client = await localClient("google-shape", googleProfile);
  const { tokens, idTokenClaims } = await connect(client, user);
  assert.equal(idTokenClaims?.email, user.username, "the mailbox address");
  assert.ok(tokens.refreshToken, "offline access");
  assert.ok(Math.abs(tokens.expiresAt - (Date.now() + 3600_000)) < 10_000);
  assert.equal(await imapAccepts(user.username, tokens.accessToken), true);

  const refreshed = await client.refresh(tokens.refreshToken!);
  assert.equal(refreshed.rotated, false);
  assert.equal(refreshed.refreshToken, tokens.refreshToken);
  assert.notEqual(refreshed.accessToken, tokens.accessToken);
  assert.equal(await imapAccepts(user.username, refreshed.accessToken), true);
  const again = await client.refresh(tokens.refreshToken!);
  assert.equal(again.rotated, false, "the same refresh token keeps working");
});

Deno.test("Microsoft preset: refresh rotates; the old refresh token reused is detected and ends the grant", async () => {
  const user = await createImapUser();
  const client = await localClient("microsoft-shape", microsoftProfile);
  const { tokens } = await connect(client, user);
  const first = await client.refresh(tokens.refreshToken!);
  assert.equal(first.rotated, true, "a new refresh token to store");
  assert.notEqual(first.refreshToken, tokens.refreshToken);
  assert.equal(await imapAccepts(user.username, first.accessToken), true);

  // A run that crashed before storing the rotated token, or a concurrent one, presents the old.
  const reuse = await client.refresh(tokens.refreshToken!).catch((error) => error);
  assert.ok(reuse instanceof ReconnectNeededError, String(reuse));
  assert.equal(reuse.oauthError, "invalid_grant");
  assertNoToken(reuse, [tokens.refreshToken, first.refreshToken]);
  const newest = await client.refresh(first.refreshToken!).catch((error) => error);
  assert.ok(
    newest instanceof ReconnectNeededError,
    "the grant is revoked: even the newest is dead",
  );
  assert.equal(await imapAccepts(user.username, first.accessToken), false, "and its access token");
});

Deno.test("revocation: after the user's grant is revoked, a refresh says reconnect needed", async () => {
  const user = await createImapUser();
  const client = await localClient("google-shape", googleProfile);
  const { tokens } = await connect(client, user);
  assert.equal(await client.revoke(tokens.refreshToken!), true);
  const error = await client.refresh(tokens.refreshToken!).catch((error) => error);
  assert.ok(error instanceof ReconnectNeededError, String(error));
  assertNoToken(error, [tokens.refreshToken, tokens.accessToken]);
  assert.equal(await imapAccepts(user.username, tokens.accessToken), false);
});

Deno.test("expiry: the access token stops at expires_in; a refresh brings a working one", async () => {
  const user = await createImapUser();
  const client = await localClient("microsoft-shape-short", microsoftProfile);
  const { tokens } = await connect(client, user);
  const lifetime = tokens.expiresAt - Date.now();
  assert.ok(lifetime > 0 && lifetime <= 10_000, `${lifetime} ms`); // STACK_OAUTH_SHORT_TTL
  await new Promise((resolve) => setTimeout(resolve, lifetime + 1000));
  assert.equal(await imapAccepts(user.username, tokens.accessToken), false, "expired");
  const refreshed = await client.refresh(tokens.refreshToken!);
  assert.equal(await imapAccepts(user.username, refreshed.accessToken), true);
});

Deno.test("a callback with another state is refused before the code is spent", async () => {
  const user = await createImapUser();
  const client = await localClient("google-shape", googleProfile);
  const request = await client.authorizationUrl({ redirectUri: oauthRedirectUri });
  const callback = await signInAndConsent(request.url, user);
  const forged = await client.exchangeCode({
    url: callback,
    expectedState: "another-users-state",
    codeVerifier: request.codeVerifier,
    redirectUri: oauthRedirectUri,
  }).catch((error) => error);
  assert.ok(forged instanceof TokenRequestError && forged.kind === "client", String(forged));
  const { tokens } = await client.exchangeCode({
    url: callback,
    expectedState: request.state,
    codeVerifier: request.codeVerifier,
    redirectUri: oauthRedirectUri,
  });
  assert.ok(tokens.refreshToken, "the code was still good");
});

Deno.test("a wrong client secret is the operator's error, not reconnect needed", async () => {
  const user = await createImapUser();
  const good = await localClient("google-shape", googleProfile);
  const { tokens } = await connect(good, user);
  const bad = createTokenClient(good.provider, { clientId: "google-shape", clientSecret: "wrong" });
  const error = await bad.refresh(tokens.refreshToken!).catch((error) => error);
  assert.ok(error instanceof TokenRequestError && error.kind === "client", String(error));
  assert.ok((await good.refresh(tokens.refreshToken!)).accessToken, "the grant is untouched");
});
