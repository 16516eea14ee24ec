import assert from "node:assert/strict";
import { isAllowedEndpoint } from "./bounded_fetch.ts";
import {
  errorForOAuthResponse,
  ReconnectNeededError,
  safeErrorCode,
  TokenRequestError,
} from "./oauth_errors.ts";
import { googleProvider, microsoftProvider } from "./providers.ts";
import { createTokenClient } from "./token_client.ts";

const credentials = { clientId: "client-1", clientSecret: "secret-never-in-a-url" };

async function s256(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return btoa(String.fromCharCode(...new Uint8Array(digest)))
    .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

Deno.test("Google preset: Gmail's IMAP server, the restricted scope, offline access with consent", () => {
  const google = googleProvider();
  assert.deepEqual(google.imap, { host: "imap.gmail.com", port: 993 });
  assert.ok(google.scopes.includes("https://mail.google.com/"));
  assert.deepEqual(google.authorizationParams, { access_type: "offline", prompt: "consent" });
  assert.equal(google.tokenEndpoint, "https://oauth2.googleapis.com/token");
  assert.equal(google.revocationEndpoint, "https://oauth2.googleapis.com/revoke");
});

Deno.test("Microsoft preset: Outlook's IMAP server, IMAP.AccessAsUser.All + offline_access, tenant in the URLs", () => {
  const microsoft = microsoftProvider({ tenant: "contoso.onmicrosoft.com" });
  assert.deepEqual(microsoft.imap, { host: "outlook.office365.com", port: 993 });
  assert.ok(microsoft.scopes.includes("https://outlook.office.com/IMAP.AccessAsUser.All"));
  assert.ok(microsoft.scopes.includes("offline_access"));
  assert.equal(
    microsoft.tokenEndpoint,
    "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
  );
  assert.equal(microsoft.revocationEndpoint, undefined, "Microsoft has no RFC 7009 endpoint");
  assert.match(microsoftProvider().tokenEndpoint, /\/common\/oauth2\/v2\.0\/token$/);
  for (const tenant of ["../evil", "a/b", "x?y=1", "evil.example/path", ""]) {
    assert.throws(() => microsoftProvider({ tenant }), /Invalid Microsoft tenant/, tenant);
  }
});

Deno.test("endpoints: https only; plain http only to loopback and only when allowed", () => {
  assert.equal(isAllowedEndpoint(new URL("https://oauth2.googleapis.com/token")), true);
  assert.equal(isAllowedEndpoint(new URL("http://oauth2.googleapis.com/token"), true), false);
  assert.equal(isAllowedEndpoint(new URL("http://127.0.0.1:8080/token")), false);
  assert.equal(isAllowedEndpoint(new URL("http://127.0.0.1:8080/token"), true), true);
  assert.equal(isAllowedEndpoint(new URL("http://[::1]:8080/token"), true), true);
  assert.equal(isAllowedEndpoint(new URL("http://127.0.0.1.evil.example/token"), true), false);
  assert.equal(isAllowedEndpoint(new URL("https://user:pw@example.com/token")), false);
  assert.equal(isAllowedEndpoint(new URL("file:///etc/passwd"), true), false);
});

Deno.test("authorization URL: PKCE S256 with a fresh verifier and state, the preset's parameters", async () => {
  const client = createTokenClient(googleProvider(), credentials);
  const redirectUri = "https://project.example/functions/v1/oauth-callback";
  const first = await client.authorizationUrl({ redirectUri, loginHint: "a@example.com" });
  const second = await client.authorizationUrl({ redirectUri });
  const params = first.url.searchParams;
  assert.equal(
    first.url.origin + first.url.pathname,
    "https://accounts.google.com/o/oauth2/v2/auth",
  );
  assert.equal(params.get("response_type"), "code");
  assert.equal(params.get("client_id"), "client-1");
  assert.equal(params.get("redirect_uri"), redirectUri);
  assert.equal(params.get("scope"), "openid email https://mail.google.com/");
  assert.equal(params.get("access_type"), "offline");
  assert.equal(params.get("prompt"), "consent");
  assert.equal(params.get("login_hint"), "a@example.com");
  assert.equal(params.get("state"), first.state);
  assert.equal(params.get("code_challenge_method"), "S256");
  assert.equal(params.get("code_challenge"), await s256(first.codeVerifier));
  assert.ok(first.codeVerifier.length >= 43);
  assert.notEqual(first.state, second.state);
  assert.notEqual(first.codeVerifier, second.codeVerifier);
  assert.ok(!first.url.href.includes(credentials.clientSecret), "no secret in the URL");
  assert.ok(!first.url.href.includes(first.codeVerifier), "the verifier stays server side");
});

Deno.test("OAuth error codes: invalid_grant means reconnect; client errors and outages are not", () => {
  assert.ok(errorForOAuthResponse(400, "invalid_grant") instanceof ReconnectNeededError);
  assert.ok(errorForOAuthResponse(400, "interaction_required") instanceof ReconnectNeededError);
  assert.ok(errorForOAuthResponse(400, "consent_required") instanceof ReconnectNeededError);
  const client = errorForOAuthResponse(401, "invalid_client");
  assert.ok(client instanceof TokenRequestError && client.kind === "client");
  const outage = errorForOAuthResponse(503, "temporarily_unavailable");
  assert.ok(outage instanceof TokenRequestError && outage.kind === "transient");
  assert.equal(safeErrorCode("invalid_grant"), "invalid_grant");
  assert.equal(safeErrorCode("invalid_grant\u001b[2J"), "unknown");
  assert.equal(safeErrorCode("x".repeat(65)), "unknown");
  assert.equal(safeErrorCode({ error: "invalid_grant" }), "unknown");
  const hostile = errorForOAuthResponse(400, "Bearer ya29.leaked");
  assert.ok(!hostile.message.includes("ya29"), hostile.message);
});
