/**
 * Signed requests for integration tests, signed by the database's own signer
 * (auto_sync.sign with the Vault keys), so every test exercises the SQL side of
 * the wire format too. Runs are created directly, without dispatch(), so tests do
 * not race the pg_cron job or the pg_net worker for them.
 */
import type postgres from "postgres";
import type { Claims as WireClaims } from "../../functions-shared/wire/claims.ts";
import {
  buildClaims,
  nowSeconds,
  type SignedRequest,
  webhookHeaders,
} from "../../functions-shared/wire/client/signed_request.ts";
import { functionsUrl } from "./local_stack.ts";

export { nowSeconds, type SignedRequest };

/** Claims as built for a run, plus whatever fields a test adds. */
export type Claims = WireClaims & { [extra: string]: unknown };

/**
 * A run in `dispatched` state for the user, as dispatch() leaves it, and the user's
 * enabled schedule, next due in an hour (so the pg_cron job leaves it alone).
 */
export async function createDispatchedRun(sql: postgres.Sql, userId: string): Promise<string> {
  return await sql.begin(async (tx) => {
    await tx`select auto_sync.enable(${userId}, '1 hour')`;
    await tx`update auto_sync.schedules set next_run_at = now() + interval '1 hour' where user_id = ${userId}`;
    const [run] = await tx`
      insert into auto_sync.runs (user_id, trigger, status, scheduled_for, dispatched_at)
      values (${userId}, 'schedule', 'dispatched', now(), now())
      returning id`;
    return run.id as string;
  });
}

export function claimsFor(userId: string, runId: string, iat = nowSeconds()): Claims {
  return buildClaims(userId, runId, { iat });
}

/**
 * Signs claims exactly as dispatch() does: body = jsonb::text as UTF-8 (what
 * pg_net sends), signature = auto_sync.sign over it with the Vault keys.
 */
export async function signInDatabase(
  sql: postgres.Sql,
  claims: Record<string, unknown>,
  options: { id?: string; timestamp?: number } = {},
): Promise<SignedRequest> {
  const id = options.id ?? String(claims.run_id);
  const timestamp = options.timestamp ?? Number(claims.iat);
  const [row] = await sql`
    with body as (select ${sql.json(claims as never)}::jsonb as claims)
    select convert_to(claims::text, 'UTF8') as body,
           auto_sync.sign(${id}, ${timestamp}, claims::text, auto_sync.signing_keys()) as signature
      from body`;
  return {
    id,
    timestamp: String(timestamp),
    signature: row.signature,
    body: new Uint8Array(row.body),
  };
}

/**
 * The tests' one sender of signed requests, over real HTTP: to cron-auto-sync through
 * the stack's gateway unless `url` says where else. Header overrides set to null are
 * left out; `body` replaces the signed bytes.
 */
export function send(
  request: SignedRequest,
  overrides: {
    url?: string;
    headers?: Record<string, string | null>;
    body?: BodyInit;
    method?: string;
  } = {},
): Promise<Response> {
  const headers = new Headers(webhookHeaders(request));
  for (const [name, value] of Object.entries(overrides.headers ?? {})) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  return fetch(overrides.url ?? `${functionsUrl}/cron-auto-sync`, {
    method: overrides.method ?? "POST",
    headers,
    body: overrides.method === "GET" ? undefined : (overrides.body ?? request.body as BodyInit),
  });
}
