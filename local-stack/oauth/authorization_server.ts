/**
 * The local stack's authorization server (test and demo infrastructure, never deployed): the
 * real `oidc-provider` (a certified OpenID Connect server) on a loopback port, with clients
 * shaped like Google's and Microsoft's (client_shapes.ts), the IMAP users as its accounts
 * (accounts.ts), and introspection for Dovecot's oauth2 passdb. Started by `scripts/stack
 * start` after provision.ts wrote its secrets.
 *
 *   authorization_server.ts --port N --state DIR --redirect-uri URL [--short-ttl SECONDS]
 *
 * Tokens live in memory (oidc-provider's own adapter): a restart forgets every grant.
 * Sign-in and consent are two small HTML forms at /interaction/<uid>, so tests drive the
 * whole authorization-code flow over HTTP as a browser would.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
// @ts-types="@types/oidc-provider"
import Provider, { type Configuration, type KoaContextWithOIDC } from "oidc-provider";
import { checkPassword } from "./accounts.ts";
import {
  defaultShortAccessTokenTtl,
  introspectionClientId,
  mailClients,
  rotatesRefreshToken,
  shapeScopes,
} from "./client_shapes.ts";
import type { Secrets } from "./provision.ts";

const mailScopes = ["https://mail.google.com/", "https://outlook.office.com/IMAP.AccessAsUser.All"];
const maxFormBytes = 4096;

function configuration(
  secrets: Secrets,
  options: { redirectUri: string; shortTtl: number },
): Configuration {
  const clients = mailClients({ shortTtl: options.shortTtl });
  const byId = new Map(clients.map((client) => [client.clientId, client]));
  const shapeOf = (clientId: string | undefined) => byId.get(clientId ?? "")?.shape;
  return {
    clients: [
      ...clients.map((client) => ({
        client_id: client.clientId,
        client_secret: secrets.clientSecrets[client.clientId],
        token_endpoint_auth_method: "client_secret_post" as const,
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code" as const],
        redirect_uris: [options.redirectUri],
        scope: shapeScopes[client.shape] + (client.shape === "google" ? " offline_access" : ""),
      })),
      {
        client_id: introspectionClientId,
        client_secret: secrets.clientSecrets[introspectionClientId],
        token_endpoint_auth_method: "client_secret_basic" as const,
        grant_types: [],
        response_types: [],
        redirect_uris: [],
      },
    ],
    jwks: { keys: [secrets.signingKey as never] },
    cookies: { keys: secrets.cookieKeys },
    scopes: ["openid", "email", "offline_access", ...mailScopes],
    claims: { email: ["email", "email_verified"] },
    extraParams: ["access_type"],
    // Google and Microsoft put the address (email) in the ID token itself.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      introspection: {
        enabled: true,
        // Only Dovecot may introspect, and only access tokens: a refresh token is no login.
        allowedPolicy: (_ctx, client, token) =>
          Promise.resolve(
            client.clientId === introspectionClientId && token.kind === "AccessToken",
          ),
      },
    },
    findAccount: (_ctx, sub) =>
      Promise.resolve({
        accountId: sub,
        claims: () => ({ sub, email: sub, email_verified: true }),
      }),
    // The login name Dovecot needs, inside the access token (opaque; read by introspection).
    extraTokenClaims: (_ctx, token) =>
      Promise.resolve(token.kind === "AccessToken" ? { email: token.accountId } : undefined),
    // Google: refresh token when access_type=offline was consented to (consent adds
    // offline_access to the grant); Microsoft: with the offline_access scope.
    issueRefreshToken: (ctx, client, code) =>
      Promise.resolve(
        client.grantTypeAllowed("refresh_token") &&
          (code.scopes.has("offline_access") ||
            (ctx.oidc.entities.Grant?.getOIDCScope().split(" ").includes("offline_access") ??
              false)),
      ),
    rotateRefreshToken: (ctx) => {
      const shape = shapeOf(ctx.oidc.client?.clientId);
      return shape !== undefined && rotatesRefreshToken(shape);
    },
    // Mail grants outlive the browser session (the user is away when the importer refreshes).
    expiresWithSession: () => Promise.resolve(false),
    // Revoking any token revokes the whole grant, as Google's revocation endpoint does.
    revokeGrantPolicy: () => true,
    ttl: {
      AccessToken: (_ctx, _token, client) => byId.get(client.clientId)?.accessTokenTtl ?? 3600,
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 3600,
      Grant: 30 * 24 * 3600,
      RefreshToken: 30 * 24 * 3600,
    },
    renderError(ctx, out) {
      ctx.type = "json";
      ctx.body = out;
    },
  };
}

function html(res: ServerResponse, body: string) {
  res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
  res.end(`<!doctype html><meta charset="utf-8"><title>Local authorization server</title>${body}`);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let size = 0;
  const chunks: Uint8Array[] = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > maxFormBytes) throw new Error("Form too large");
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

/** GET /interaction/<uid>: the sign-in or consent form; POST: its answer. */
async function interaction(
  provider: Provider,
  options: { usersFile: string },
  req: IncomingMessage,
  res: ServerResponse,
) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params } = details;
  if (req.method === "GET") {
    const fields = prompt.name === "login"
      ? `<input name="username"><input name="password" type="password">`
      : `<p>${escapeHtml(String(params.client_id))} asks for: ${
        escapeHtml(String(params.scope))
      }</p>`;
    return html(
      res,
      `<form method="post" action="/interaction/${uid}">${fields}<button>Continue</button></form>`,
    );
  }
  const form = await readForm(req);
  if (prompt.name === "login") {
    const username = (form.get("username") ?? "").toLowerCase();
    if (
      !await checkPassword(options.usersFile, { username, password: form.get("password") ?? "" })
    ) {
      res.writeHead(401, { "content-type": "text/plain" });
      return res.end("Wrong user name or password");
    }
    return await provider.interactionFinished(req, res, { login: { accountId: username } }, {
      mergeWithLastSubmission: false,
    });
  }
  // Consent: grant what the client asked for; Google's access_type=offline asks for offline
  // access without the offline_access scope, and only with prompt=consent does it get it here.
  const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({
    accountId: details.session!.accountId,
    clientId: String(params.client_id),
  });
  if (!grant) throw new Error("Grant not found");
  const missing = (prompt.details.missingOIDCScope as string[] | undefined) ?? [];
  const offline = params.access_type === "offline" &&
    String(params.prompt ?? "").split(" ").includes("consent");
  const scope = [...missing, ...(offline ? ["offline_access"] : [])];
  if (scope.length > 0) grant.addOIDCScope(scope.join(" "));
  const claims = prompt.details.missingOIDCClaims as string[] | undefined;
  if (claims) grant.addOIDCClaims(claims);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, {
    mergeWithLastSubmission: true,
  });
}

function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string" },
      state: { type: "string" },
      "redirect-uri": { type: "string" },
      "short-ttl": { type: "string" },
    },
  });
  const port = Number(values.port);
  const state = values.state;
  const redirectUri = values["redirect-uri"];
  const shortTtl = Number(values["short-ttl"] ?? defaultShortAccessTokenTtl);
  if (!Number.isInteger(port) || !state || !redirectUri || !(shortTtl > 0)) {
    throw new Error(
      "Usage: authorization_server.ts --port N --state DIR --redirect-uri URL [--short-ttl S]",
    );
  }
  const secrets: Secrets = JSON.parse(Deno.readTextFileSync(`${state}/oauth/secrets.json`));
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, configuration(secrets, { redirectUri, shortTtl }));
  provider.on(
    "server_error",
    (_ctx: KoaContextWithOIDC, error: Error) =>
      console.error(`authorization server: ${error.message}`),
  );
  const handle = provider.callback();
  const usersFile = `${state}/dovecot/users`;
  createServer((req, res) => {
    if (req.url?.startsWith("/interaction/")) {
      interaction(provider, { usersFile }, req, res).catch((error) => {
        console.error(`authorization server: interaction: ${error.message}`);
        if (!res.headersSent) res.writeHead(400, { "content-type": "text/plain" });
        res.end("Bad request");
      });
      return;
    }
    handle(req, res);
  }).listen(port, "127.0.0.1", () => console.log(`authorization server: ${issuer}`));
}

if (import.meta.main) main();
