/**
 * The local authorization server (local-stack/oauth/, real oidc-provider) for integration
 * tests: its clients' secrets, a user who signs in and consents as a browser would, and the
 * token endpoint called as a confidential client calls it.
 */
import { oauthIssuer, oauthRedirectUri, stateDir } from "../../local-stack/urls.ts";
import type { Secrets } from "../../local-stack/oauth/provision.ts";

export { oauthIssuer, oauthRedirectUri };

export function clientSecret(clientId: string): string {
  const secrets: Secrets = JSON.parse(Deno.readTextFileSync(`${stateDir}/oauth/secrets.json`));
  const secret = secrets.clientSecrets[clientId];
  if (!secret) throw new Error(`No client "${clientId}" on the local authorization server`);
  return secret;
}

/** Cookies as a browser keeps them for one origin (name → value). */
function keepCookies(jar: Map<string, string>, response: Response) {
  for (const line of response.headers.getSetCookie()) {
    const [pair] = line.split(";");
    const at = pair.indexOf("=");
    jar.set(pair.slice(0, at).trim(), pair.slice(at + 1));
  }
}

/**
 * Plays the user's browser through the authorization request: follows the redirects, signs in
 * with the IMAP user's name and password, consents, and returns the URL the server sends the
 * browser back to (the redirect URI with `code` and `state`, or with `error`).
 */
export async function signInAndConsent(
  authorizationUrl: URL | string,
  user: { username: string; password: string },
): Promise<URL> {
  const jar = new Map<string, string>();
  let url = new URL(authorizationUrl);
  let body: URLSearchParams | undefined;
  for (let step = 0; step < 12; step++) {
    const response = await fetch(url, {
      method: body ? "POST" : "GET",
      body,
      redirect: "manual",
      headers: { cookie: [...jar].map(([name, value]) => `${name}=${value}`).join("; ") },
    });
    keepCookies(jar, response);
    body = undefined;
    const location = response.headers.get("location");
    if (location) {
      await response.body?.cancel();
      const next = new URL(location, url);
      if (next.origin !== new URL(oauthIssuer).origin) return next;
      url = next;
      continue;
    }
    const page = await response.text();
    if (response.status !== 200) {
      throw new Error(`Authorization server said ${response.status}: ${page}`);
    }
    body = page.includes('name="password"')
      ? new URLSearchParams({ username: user.username, password: user.password })
      : new URLSearchParams({ consent: "yes" });
  }
  throw new Error("Too many steps in the authorization flow");
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

/** The scopes and extra parameters each client shape is asked with (as the presets ask). */
export const shapeRequest = {
  google: {
    scope: "openid email https://mail.google.com/",
    access_type: "offline",
    prompt: "consent",
  },
  microsoft: {
    scope: "openid email offline_access https://outlook.office.com/IMAP.AccessAsUser.All",
    prompt: "consent",
  },
} as const;

/**
 * An authorization request with PKCE (S256) for the client; `params` replace or remove
 * (undefined) any parameter, e.g. to leave out the code challenge.
 */
export async function authorizationRequest(
  clientId: string,
  params: Record<string, string | undefined> = {},
): Promise<{ url: URL; codeVerifier: string; state: string }> {
  const codeVerifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64url(
    new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(codeVerifier)),
    ),
  );
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const shape = clientId.startsWith("google") ? shapeRequest.google : shapeRequest.microsoft;
  const all: Record<string, string | undefined> = {
    client_id: clientId,
    response_type: "code",
    redirect_uri: oauthRedirectUri,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...shape,
    ...params,
  };
  const url = new URL("/auth", oauthIssuer);
  for (const [name, value] of Object.entries(all)) {
    if (value !== undefined) url.searchParams.set(name, value);
  }
  return { url, codeVerifier, state };
}

/** A call to the token endpoint as the confidential client (client_secret_post). */
export async function tokenRequest(
  clientId: string,
  params: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(new URL("/token", oauthIssuer), {
    method: "POST",
    body: new URLSearchParams({
      ...params,
      client_id: clientId,
      client_secret: clientSecret(clientId),
    }),
  });
  return { status: response.status, body: await response.json() };
}

/** The whole code flow for an IMAP user: sign in, consent, exchange the code. */
export async function connectWithCode(
  clientId: string,
  user: { username: string; password: string },
  params: Record<string, string | undefined> = {},
): Promise<Record<string, unknown>> {
  const request = await authorizationRequest(clientId, params);
  const back = await signInAndConsent(request.url, user);
  const code = back.searchParams.get("code");
  if (!code || back.searchParams.get("state") !== request.state) {
    throw new Error(`No code in the redirect: ${back.searchParams.get("error")}`);
  }
  const { status, body } = await tokenRequest(clientId, {
    grant_type: "authorization_code",
    code,
    redirect_uri: oauthRedirectUri,
    code_verifier: request.codeVerifier,
  });
  if (status !== 200) throw new Error(`Code exchange failed: ${status} ${body.error}`);
  return body;
}

/** Introspection as a given client (Dovecot's unless told). */
export async function introspect(
  token: string,
  clientId = "dovecot",
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(new URL("/token/introspection", oauthIssuer), {
    method: "POST",
    headers: { authorization: `Basic ${btoa(`${clientId}:${clientSecret(clientId)}`)}` },
    body: new URLSearchParams({ token }),
  });
  return { status: response.status, body: await response.json() };
}

/** Revokes a token at the server (RFC 7009) as the client it was issued to. */
export async function revoke(token: string, clientId: string): Promise<number> {
  const response = await fetch(new URL("/token/revocation", oauthIssuer), {
    method: "POST",
    body: new URLSearchParams({
      token,
      client_id: clientId,
      client_secret: clientSecret(clientId),
    }),
  });
  await response.body?.cancel();
  return response.status;
}
