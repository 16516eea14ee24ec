/**
 * The connect flow of OAuth mailboxes over HTTP (one app; functions oauth-connect and
 * oauth-callback both serve it):
 *
 *   POST .../oauth-connect          {provider, return_to}, the user's token
 *        -> 200 {authorization_url}: PKCE S256, a fresh single-use state (stored hashed, bound
 *           to the user, 10 minutes), the exact redirect URI; return_to must be one of the
 *           operator's OAUTH_RETURN_URLS exactly
 *   GET  .../oauth-callback         ?code&state (the browser, back from the provider)
 *        -> the state spent once, the code redeemed with its verifier, the address from the
 *           ID token, the refresh token into Vault under a one-time ticket for that user;
 *           303 to return_to?oauth_ticket=... (or ?oauth_error=connect_failed)
 *   POST .../oauth-connect/finish   {ticket}, the user's token again
 *        -> 200 {mailbox_id}: the mailbox made (or reconnected) for that user only
 *   POST .../oauth-connect/handover  {provider, refresh_token}, the user's token: a refresh
 *        token the app received from Supabase Auth (provider_refresh_token, same client).
 *        -> 200 {mailbox_id} after one refresh proves it works and its ID token names the
 *           user's own account (their email, and a sign-in with that provider): a refresh
 *           token stolen elsewhere cannot be turned into an import of someone else's mail
 *   POST .../oauth-connect/disconnect  {mailbox_id}, the user's token
 *        -> 200 {revoked}: the mailbox, its mail and its Vault secret deleted, then the grant
 *           revoked at the provider where it has an endpoint (false where it has none or
 *           the call failed: the user revokes it in their account)
 *
 * Every refusal is generic (the reason goes to the log, never a token or the provider's text).
 */
import { Hono } from "hono";
import { cors } from "../import_emails/cors.ts";
import type { UserAuthenticator } from "../import_emails/user_auth.ts";
import { sha256Hex } from "../import_emails/oauth_access.ts";
import { mailboxAddress } from "../oauth/tenant_issuer.ts";
import { ReconnectNeededError, TokenRequestError } from "../oauth/oauth_errors.ts";
import { type ProviderClients, supabaseAuthProvider } from "../oauth/provider_clients.ts";
import { errorResponse, isJsonContentType, readBodyWithLimit } from "../platform/http.ts";
import { errorText, type Logger } from "../platform/log.ts";
import type { ConnectStore } from "./connect_store.ts";

export interface OAuthConnectDeps {
  authenticate: UserAuthenticator;
  providers: ProviderClients;
  store: ConnectStore;
  /** The exact redirect URI registered at the providers. */
  redirectUri: string;
  /** OAUTH_RETURN_URLS, normalised. */
  returnUrls: string[];
  log: Logger;
}

const MAX_BODY_BYTES = 4096;
/** The IMAP login the ID token names (its `email`): one token of printable text, as the row takes it. */
const ADDRESS = /^[^\s\p{Cc}]{1,320}$/u;

/** The one page a refused callback gets: it says nothing of why. */
function refusedPage(): Response {
  return new Response(
    "<!doctype html><title>Connection failed</title><p>This sign-in link is not valid (any more). Start connecting the mailbox again from the app.</p>",
    { status: 400, headers: { "content-type": "text/html; charset=utf-8" } },
  );
}

function backTo(returnTo: string, name: string, value: string): Response {
  const url = new URL(returnTo);
  url.searchParams.set(name, value);
  return new Response(null, {
    status: 303,
    headers: { location: url.href, "cache-control": "no-store", "referrer-policy": "no-referrer" },
  });
}

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

async function jsonBody(request: Request): Promise<Record<string, unknown> | null> {
  if (!isJsonContentType(request.headers.get("content-type"))) return null;
  const bytes = await readBodyWithLimit(request, MAX_BODY_BYTES);
  if (bytes === null) return null;
  try {
    const body = JSON.parse(new TextDecoder().decode(bytes));
    return body && typeof body === "object" && !Array.isArray(body) ? body : null;
  } catch {
    return null;
  }
}

export function createOAuthConnectApp(deps: OAuthConnectDeps): Hono {
  const { authenticate, providers, store, log } = deps;
  const app = new Hono();
  app.use("*", cors());

  async function user(authorization: string | undefined) {
    const found = await authenticate(authorization ?? null);
    if (!found) log.warn("Rejected connect request", { status: 401, reason: "user token" });
    return found;
  }

  /** Step 1: the provider's authorization URL for the signed-in user. */
  async function start(request: Request): Promise<Response> {
    const caller = await user(request.headers.get("authorization") ?? undefined);
    if (!caller) return errorResponse(401);
    const body = await jsonBody(request);
    const provider = typeof body?.provider === "string" ? body.provider : "";
    let returnTo: string | null = null;
    try {
      returnTo = typeof body?.return_to === "string" ? new URL(body.return_to).href : null;
    } catch { /* not a URL */ }
    // Exact match only: no prefix, no pattern, so no open redirect.
    if (!returnTo || !deps.returnUrls.includes(returnTo)) {
      log.warn("Rejected connect request", { status: 400, reason: "return_to not allowed" });
      return errorResponse(400);
    }
    const client = providers.names.includes(provider) ? await providers.client(provider) : null;
    if (!client) {
      log.warn("Rejected connect request", { status: 400, reason: "unknown provider" });
      return errorResponse(400);
    }
    const flow = await client.authorizationUrl({ redirectUri: deps.redirectUri });
    try {
      await store.begin({
        userId: caller.userId,
        isAnonymous: caller.isAnonymous,
        provider,
        stateSha256: await sha256Hex(flow.state),
        codeVerifier: flow.codeVerifier,
        returnTo,
      });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "42501") return errorResponse(403);
      if (code === "54000") return errorResponse(429);
      log.error("Cannot begin connect", { user_id: caller.userId, error: errorText(error) });
      return errorResponse(503);
    }
    log.info("Connect started", { user_id: caller.userId, provider });
    return Response.json({ authorization_url: flow.url.href }, {
      headers: { "cache-control": "no-store" },
    });
  }

  /** Step 2: the provider sent the browser back. */
  async function callback(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const state = url.searchParams.get("state");
    if (!state || state.length > 512) return refusedPage();
    const flow = await store.takeState(await sha256Hex(state)).catch((error) => {
      log.error("Cannot read connect state", { error: errorText(error) });
      return null;
    });
    if (!flow) {
      log.warn("Rejected connect callback", { reason: "unknown, spent or expired state" });
      return refusedPage();
    }
    const client = await providers.client(flow.provider).catch(() => null);
    try {
      if (!client) throw new TokenRequestError("client", "Provider no longer configured");
      const { tokens, idTokenClaims } = await client.exchangeCode({
        // The parameters as received; the redirect URI is the registered one.
        url: new URL(`${deps.redirectUri}${url.search}`),
        expectedState: state,
        codeVerifier: flow.codeVerifier,
        redirectUri: deps.redirectUri,
      });
      // The IMAP username: email, or an address-shaped preferred_username (tenant_issuer.ts).
      const address = idTokenClaims ? mailboxAddress(idTokenClaims) : undefined;
      if (!address || !ADDRESS.test(address) || !tokens.refreshToken) {
        throw new TokenRequestError("invalid_response", "No usable address or refresh token");
      }
      const ticket = randomToken();
      await store.park({
        userId: flow.userId,
        provider: flow.provider,
        address,
        imap: client.provider.imap,
        refreshToken: tokens.refreshToken,
        ticketSha256: await sha256Hex(ticket),
      });
      log.info("Connect redeemed", { user_id: flow.userId, provider: flow.provider });
      return backTo(flow.returnTo, "oauth_ticket", ticket);
    } catch (error) {
      log.warn("Connect callback failed", {
        user_id: flow.userId,
        provider: flow.provider,
        error: error instanceof ReconnectNeededError || error instanceof TokenRequestError
          ? error.message
          : "database error",
      });
      return backTo(flow.returnTo, "oauth_error", "connect_failed");
    }
  }

  /** Step 3: the user who started the flow turns the ticket into the mailbox. */
  async function finish(request: Request): Promise<Response> {
    const caller = await user(request.headers.get("authorization") ?? undefined);
    if (!caller) return errorResponse(401);
    const body = await jsonBody(request);
    const ticket = typeof body?.ticket === "string" ? body.ticket : "";
    if (!/^[A-Za-z0-9_-]{43}$/.test(ticket)) return errorResponse(400);
    let mailboxId: string | null;
    try {
      mailboxId = await store.finish(caller, await sha256Hex(ticket));
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "42501") return errorResponse(403);
      if (code === "54000") return errorResponse(429);
      log.error("Cannot finish connect", { user_id: caller.userId, error: errorText(error) });
      return errorResponse(503);
    }
    if (!mailboxId) {
      log.warn("Rejected connect finish", {
        user_id: caller.userId,
        reason: "unknown, spent, expired or another user's ticket",
      });
      return errorResponse(404);
    }
    log.info("Mailbox connected", { user_id: caller.userId, mailbox_id: mailboxId });
    return Response.json({ mailbox_id: mailboxId });
  }

  /** Handover: a refresh token from Supabase Auth, for the account the user signed in with. */
  async function handover(request: Request): Promise<Response> {
    const caller = await user(request.headers.get("authorization") ?? undefined);
    if (!caller) return errorResponse(401);
    if (caller.isAnonymous) return errorResponse(403);
    const body = await jsonBody(request);
    const provider = typeof body?.provider === "string" ? body.provider : "";
    const handed = typeof body?.refresh_token === "string" ? body.refresh_token : "";
    const client = providers.names.includes(provider) ? await providers.client(provider) : null;
    if (!client || handed.length === 0 || handed.length > 8192) return errorResponse(400);
    if (!caller.email || !caller.providers?.includes(supabaseAuthProvider(provider))) {
      log.warn("Rejected handover", { user_id: caller.userId, reason: "no such sign-in" });
      return errorResponse(403);
    }
    let redeemed: Awaited<ReturnType<typeof client.refreshWithIdentity>>;
    try {
      redeemed = await client.refreshWithIdentity(handed);
    } catch (error) {
      log.warn("Rejected handover", {
        user_id: caller.userId,
        reason: error instanceof ReconnectNeededError || error instanceof TokenRequestError
          ? error.message
          : "refresh failed",
      });
      return errorResponse(400);
    }
    const address = redeemed.idTokenClaims?.email;
    const token = redeemed.tokens.refreshToken;
    if (
      !address || !ADDRESS.test(address) || !token ||
      address.toLowerCase() !== caller.email.toLowerCase()
    ) {
      // Not the caller's own account: nothing is stored (a stolen token stays useless here).
      log.warn("Rejected handover", { user_id: caller.userId, reason: "not the user's account" });
      return errorResponse(403);
    }
    try {
      // The ticket never leaves the function: park and finish at once, for this user.
      const ticketSha256 = await sha256Hex(randomToken());
      await store.park({
        userId: caller.userId,
        provider,
        address,
        imap: client.provider.imap,
        refreshToken: token,
        ticketSha256,
      });
      const mailboxId = await store.finish(caller, ticketSha256);
      if (!mailboxId) throw new Error("Handover ticket not found");
      log.info("Mailbox handed over", { user_id: caller.userId, mailbox_id: mailboxId });
      return Response.json({ mailbox_id: mailboxId });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "42501") return errorResponse(403);
      if (code === "54000") return errorResponse(429);
      log.error("Cannot store handover", { user_id: caller.userId, error: errorText(error) });
      return errorResponse(503);
    }
  }

  /** Disconnect: delete first (the token leaves the database whatever happens), then revoke. */
  async function disconnect(request: Request): Promise<Response> {
    const caller = await user(request.headers.get("authorization") ?? undefined);
    if (!caller) return errorResponse(401);
    const body = await jsonBody(request);
    const mailboxId = typeof body?.mailbox_id === "string" ? body.mailbox_id : "";
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(mailboxId)) {
      return errorResponse(400);
    }
    let taken: Awaited<ReturnType<ConnectStore["takeMailbox"]>>;
    try {
      taken = await store.takeMailbox(caller.userId, mailboxId);
    } catch (error) {
      log.error("Cannot disconnect", { user_id: caller.userId, error: errorText(error) });
      return errorResponse(503);
    }
    if (!taken) return errorResponse(404);
    let revoked = false;
    try {
      const client = await providers.client(taken.provider);
      revoked = client && taken.refreshToken ? await client.revoke(taken.refreshToken) : false;
    } catch (error) {
      log.warn("Revocation failed", {
        user_id: caller.userId,
        provider: taken.provider,
        error: error instanceof Error ? error.message : "unknown",
      });
    }
    log.info("Mailbox disconnected", { user_id: caller.userId, mailbox_id: mailboxId, revoked });
    return Response.json({ revoked });
  }

  app.all("*", (c) => {
    const path = new URL(c.req.url).pathname;
    if (c.req.method === "GET" && /\/oauth-callback\/?$/.test(path)) return callback(c.req.raw);
    if (c.req.method === "POST" && /\/oauth-connect\/finish\/?$/.test(path)) {
      return finish(c.req.raw);
    }
    if (c.req.method === "POST" && /\/oauth-connect\/handover\/?$/.test(path)) {
      return handover(c.req.raw);
    }
    if (c.req.method === "POST" && /\/oauth-connect\/disconnect\/?$/.test(path)) {
      return disconnect(c.req.raw);
    }
    if (c.req.method === "POST" && /\/oauth-connect\/?$/.test(path)) return start(c.req.raw);
    return errorResponse(404);
  });
  return app;
}
