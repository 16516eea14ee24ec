/**
 * Sign-in cost of an OAuth mailbox against a password mailbox, on the local stack (issue 17's
 * benchmark): IMAP connect + login with a cached access token (Dovecot introspects it at the
 * local oidc-provider) versus with a password, and what a refresh adds (one round trip to the
 * token endpoint; rotating and non-rotating shapes). Goal: cached token at most 1.1x password.
 *
 *   deno run --allow-all bench/oauth_sign_in_bench.ts    (needs scripts/stack start)
 */
import { ImapFlow } from "imapflow";
import {
  discoverProvider,
  googleProfile,
  microsoftProfile,
} from "../functions-shared/oauth/providers.ts";
import { createTokenClient } from "../functions-shared/oauth/token_client.ts";
import { createImapUser, IMAP_PORT } from "../tests/support/imap.ts";
import {
  clientSecret,
  oauthIssuer,
  oauthRedirectUri,
  signInAndConsent,
} from "../tests/support/oauth.ts";

const ROUNDS = 50;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function timed(task: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await task();
  return performance.now() - started;
}

async function login(auth: { user: string; pass?: string; accessToken?: string }) {
  const client = new ImapFlow({
    host: "127.0.0.1",
    port: IMAP_PORT,
    secure: false,
    doSTARTTLS: false,
    auth,
    logger: false,
  });
  const ms = await timed(() => client.connect());
  await client.logout();
  return ms;
}

const user = await createImapUser();
const rows: string[] = [];
let cachedToken = "";
for (
  const [clientId, profile] of [["google-shape", googleProfile], [
    "microsoft-shape",
    microsoftProfile,
  ]] as const
) {
  const provider = await discoverProvider(
    oauthIssuer,
    { ...profile, imap: { host: "127.0.0.1", port: IMAP_PORT } },
    { timeoutMs: 5000, maxBytes: 64 * 1024, allowLoopbackHttp: true },
  );
  const client = createTokenClient(provider, { clientId, clientSecret: clientSecret(clientId) });
  const request = await client.authorizationUrl({ redirectUri: oauthRedirectUri });
  const { tokens } = await client.exchangeCode({
    url: await signInAndConsent(request.url, user),
    expectedState: request.state,
    codeVerifier: request.codeVerifier,
    redirectUri: oauthRedirectUri,
  });
  let refreshToken = tokens.refreshToken!;
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    times.push(
      await timed(async () => {
        const next = await client.refresh(refreshToken);
        refreshToken = next.refreshToken!;
        cachedToken = next.accessToken;
      }),
    );
  }
  rows.push(`refresh, ${clientId}: median ${median(times).toFixed(1)} ms, 1 round trip`);
}

const password: number[] = [];
const bearer: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  password.push(await login({ user: user.username, pass: user.password }));
  bearer.push(await login({ user: user.username, accessToken: cachedToken }));
}
const ratio = median(bearer) / median(password);
rows.push(`IMAP connect + login, password: median ${median(password).toFixed(1)} ms`);
rows.push(
  `IMAP connect + login, cached access token: median ${median(bearer).toFixed(1)} ms (${
    ratio.toFixed(2)
  }x password; goal <= 1.1x: ${ratio <= 1.1 ? "met" : "NOT MET"})`,
);
console.log(rows.join("\n"));
