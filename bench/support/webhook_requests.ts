/**
 * Requests shaped like the ones auto_sync.dispatch() sends: the claims body as
 * Postgres prints jsonb (keys ordered by length then bytes, a space after `:` and
 * `,`), the run id as webhook-id, unix seconds as webhook-timestamp.
 */
import { sign, type SigningKey } from "../../functions-shared/standard_webhooks.ts";

export interface BenchRequest {
  id: string;
  timestamp: string;
  signature: string;
  /** The claims body as text (what a string-taking verifier gets). */
  text: string;
  /** The same body as raw bytes (what the function reads off the wire). */
  bytes: Uint8Array<ArrayBuffer>;
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** `jsonb_build_object(...)::text` of dispatch()'s claims, byte for byte. */
export function claimsText(userId: string, runId: string, iat: number, ttlSeconds = 300): string {
  return `{"aud": "cron-auto-sync", "exp": ${
    iat + ttlSeconds
  }, "iat": ${iat}, "sub": "${userId}", ` +
    `"scope": "import-emails", "run_id": "${runId}"}`;
}

/** `count` distinct requests stamped `timestamp`, each signed with every key of `keys`. */
export function buildRequests(
  keys: SigningKey[],
  count: number,
  timestamp = nowSeconds(),
): BenchRequest[] {
  const encoder = new TextEncoder();
  return Array.from({ length: count }, () => {
    const id = crypto.randomUUID();
    const text = claimsText(crypto.randomUUID(), id, timestamp);
    const bytes = encoder.encode(text);
    return {
      id,
      timestamp: String(timestamp),
      signature: sign(keys, { id, timestamp, payload: bytes }),
      text,
      bytes,
    };
  });
}

/** The four request headers the function expects, as a plain object. */
export function webhookHeaders(request: BenchRequest): Record<string, string> {
  return {
    "content-type": "application/json",
    "webhook-id": request.id,
    "webhook-timestamp": request.timestamp,
    "webhook-signature": request.signature,
  };
}
