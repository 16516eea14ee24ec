/**
 * What pg_net was asked to send, captured inside the dispatching transaction: an
 * AFTER INSERT trigger on the real net.http_request_queue copies each queued request
 * (url, headers, the exact body bytes the worker sends) into `request_capture.queued`
 * before the worker can take it. Tests and the demo replay these copies to show that
 * a captured request is worthless. Capture is switched on only while a caller needs it.
 */
import type postgres from "postgres";
import type { SignedRequest } from "./signed_requests.ts";

export type SentRequest = SignedRequest & { url: string; netId: string };

/**
 * Queues one signed request through pg_net the way dispatch() does (same body
 * builder, same headers, same signer over the Vault keys) for an existing run,
 * without calling dispatch() itself, which would also pick other tests' schedules.
 * Returns the pg_net id and the request as queued, read before the commit. `url`
 * sends it elsewhere than settings.endpoint_url.
 */
export async function queueLikeDispatch(
  sql: postgres.Sql,
  run: { userId: string; runId: string; url?: string },
): Promise<{ netId: string; captured: SentRequest }> {
  const { userId, runId } = run;
  return await sql.begin(async (tx) => {
    const [row] = await tx`
    with claimed as (
      select floor(extract(epoch from now()))::bigint as ts from auto_sync.settings
    ), body as (
      select ts, auto_sync.request_claims(${userId}::uuid, ${runId}::uuid, ts,
                                          floor(extract(epoch from s.request_ttl))::bigint) as body,
             s.endpoint_url, s.request_timeout_ms
        from claimed, auto_sync.settings s
    )
    select net.http_post(
             url := coalesce(${run.url ?? null}::text, endpoint_url),
             body := body,
             headers := jsonb_build_object(
               'Content-Type', 'application/json',
               'webhook-id', ${runId}::text,
               'webhook-timestamp', ts::text,
               'webhook-signature', auto_sync.sign(${runId}::text, ts, body::text, auto_sync.signing_keys())),
             timeout_milliseconds := request_timeout_ms)::text as id
      from body`;
    await tx`update auto_sync.runs set net_request_id = ${row.id}::bigint where id = ${runId}`;
    return { netId: row.id as string, captured: await queuedRequest(tx, row.id) };
  });
}

/** Starts copying every request queued from now on (idempotent). */
export async function startCapture(sql: postgres.Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext('request_capture'))`;
    await tx`create schema if not exists request_capture`;
    await tx`revoke all on schema request_capture from public`;
    await tx`
      create table if not exists request_capture.queued (
        net_id bigint primary key, url text not null, headers jsonb not null, body bytea)`;
    await tx`
      create or replace function request_capture.copy() returns trigger
      language plpgsql set search_path = '' as $$
      begin
        insert into request_capture.queued (net_id, url, headers, body)
        values (new.id, new.url, new.headers, new.body) on conflict (net_id) do nothing;
        return null;
      end $$`;
    await tx`drop trigger if exists request_capture on net.http_request_queue`;
    await tx`
      create trigger request_capture after insert on net.http_request_queue
      for each row execute function request_capture.copy()`;
  });
}

/** Stops copying and forgets what was captured. */
export async function stopCapture(sql: postgres.Sql): Promise<void> {
  await sql`drop schema if exists request_capture cascade`;
}

/** The request queued under pg_net id `netId`, as captured; undefined if none was. */
export async function capturedRequest(
  sql: postgres.Sql,
  netId: string | number | bigint,
): Promise<SentRequest | undefined> {
  const [row] = await sql<QueuedRow[]>`
    select net_id::text, url, headers, body from request_capture.queued where net_id = ${
    String(netId)
  }::bigint`;
  return row && toSentRequest(row);
}

/**
 * The request as it sits in net.http_request_queue, read by the transaction that queued
 * it (before its commit, the worker cannot see it).
 */
export async function queuedRequest(
  tx: postgres.TransactionSql,
  netId: string,
): Promise<SentRequest> {
  const [row] = await tx<QueuedRow[]>`
    select id::text as net_id, url, headers, body from net.http_request_queue where id = ${netId}::bigint`;
  if (!row) throw new Error(`No request "${netId}" in net.http_request_queue`);
  return toSentRequest(row);
}

interface QueuedRow {
  net_id: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

function toSentRequest(row: QueuedRow): SentRequest {
  return {
    netId: row.net_id,
    url: row.url,
    id: row.headers["webhook-id"],
    timestamp: row.headers["webhook-timestamp"],
    signature: row.headers["webhook-signature"],
    body: new Uint8Array(row.body),
  };
}
