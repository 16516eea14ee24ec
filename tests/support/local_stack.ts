/**
 * What the integration tests need to reach the running local stack (scripts/stack):
 * its database, its functions URL, and a way to mint user tokens with the stack's
 * own JWT key. Reads the stack's state folder (written by scripts/stack start).
 */
import { importJWK, SignJWT } from "jose";
import postgres from "postgres";
import { parseKeyring, type SigningKey } from "../../functions-shared/wire/standard_webhooks.ts";
import { readEnvFile } from "../../local-stack/env_file.ts";
import { dbUrl, functionsUrl, stateDir } from "../../local-stack/urls.ts";

export { dbUrl, functionsUrl, stateDir };

export function connect(): postgres.Sql {
  return postgres(dbUrl, { max: 4, onnotice: () => {} });
}

export function readFunctionsEnv(): Record<string, string> {
  return readEnvFile(`${stateDir}/functions.env`);
}

/** The stack's signing keyring, as the function sees it. */
export function stackKeyring(): SigningKey[] {
  return parseKeyring(readFunctionsEnv().AUTO_SYNC_SIGNING_SECRETS);
}

/** The raw `whsec_...` secrets, for tests that scan output for leaks. */
export function stackSecrets(): string[] {
  return readFunctionsEnv().AUTO_SYNC_SIGNING_SECRETS.split("|").map((entry) => entry.slice(3));
}

/** A user access token as Supabase Auth would issue it, signed with the stack's key. */
export async function mintUserToken(
  userId: string,
  options: {
    role?: string;
    expiresIn?: string;
    isAnonymous?: boolean;
    email?: string;
    /** app_metadata.providers, as Supabase Auth lists the user's sign-in providers. */
    providers?: string[];
  } = {},
): Promise<string> {
  const jwk = JSON.parse(Deno.readTextFileSync(`${stateDir}/jwt_private.jwk`));
  const key = await importJWK(jwk, "ES256");
  return await new SignJWT({
    role: options.role ?? "authenticated",
    email: options.email ?? `${userId}@example.test`,
    ...(options.providers ? { app_metadata: { providers: options.providers } } : {}),
    // Supabase Auth puts the claim in every user token.
    is_anonymous: options.isAnonymous ?? false,
  })
    .setProtectedHeader({ alg: "ES256", kid: jwk.kid, typ: "JWT" })
    .setSubject(userId)
    .setAudience("authenticated")
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "10m")
    .sign(key);
}

/** Creates an auth user and returns its id. */
export async function createUser(sql: postgres.Sql, label = "user"): Promise<string> {
  const id = crypto.randomUUID();
  await sql`insert into auth.users (id, email) values (${id}, ${`${label}-${id}@example.test`})`;
  return id;
}

/** Polls until `check` returns a value (not undefined) or the time runs out. */
export async function waitFor<T>(
  check: () => Promise<T | undefined>,
  options: { timeoutMs: number; intervalMs?: number; onWait?: (elapsedMs: number) => void },
): Promise<T> {
  const started = Date.now();
  while (true) {
    const value = await check();
    if (value !== undefined) return value;
    const elapsed = Date.now() - started;
    if (elapsed > options.timeoutMs) throw new Error(`Timed out after ${options.timeoutMs} ms`);
    options.onWait?.(elapsed);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 250));
  }
}

/**
 * POSTs JSON to a function as a signed-in user (`path` under /functions/v1/, e.g.
 * "oauth-connect/finish"); the status and the JSON answer.
 */
export async function postAsUser(path: string, userToken: string, body?: unknown) {
  const response = await fetch(`${functionsUrl}/${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${userToken}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}
