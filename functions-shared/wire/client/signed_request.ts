/**
 * CLIENT SIDE: no function imports this module (the functions only verify; see
 * ../standard_webhooks.ts and ../claims.ts). It is the sender's half, for ops, tests and
 * benchmarks.
 *
 * A signed auto-sync request as it goes on the wire, TypeScript's one builder of it:
 * claims (buildClaims) -> the exact body bytes Postgres sends (jsonbText, what
 * `jsonb::text` prints) -> Standard Webhooks headers (signRequest, through
 * standard_webhooks.ts `sign`). Used by ops (probe, doctor), the tests and the
 * benchmarks; SQL's builder is auto_sync.request_claims + auto_sync.sign. Both are
 * held to the same bytes by tests/fixtures/wire_vectors.json.
 */
import { AUDIENCE, type Claims, SCOPE } from "../claims.ts";
import { sign, type SigningKey } from "../standard_webhooks.ts";
import { REQUEST_LIFETIME_SECONDS } from "../wire_limits.ts";

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** The claims of a request for `subject`'s run `runId`, as auto_sync.request_claims builds them. */
export function buildClaims(
  subject: string,
  runId: string,
  options: { iat?: number; lifetimeSeconds?: number } = {},
): Claims {
  const iat = options.iat ?? nowSeconds();
  return {
    aud: AUDIENCE,
    scope: SCOPE,
    sub: subject,
    run_id: runId,
    iat,
    exp: iat + (options.lifetimeSeconds ?? REQUEST_LIFETIME_SECONDS),
  };
}

const encoder = new TextEncoder();

/** Postgres orders jsonb keys by length, then byte by byte (UTF-8). */
function jsonbKeyOrder(a: string, b: string): number {
  const [x, y] = [encoder.encode(a), encoder.encode(b)];
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

/**
 * `value::jsonb::text`, byte for byte: keys in jsonb order (the last of equal keys
 * wins), `": "` and `", "` as separators, strings escaped as Postgres does (JSON.stringify
 * escapes the same characters). Numbers print as JavaScript writes them, which jsonb
 * keeps digit for digit, except in exponent form (jsonb would expand it): refused.
 */
export function jsonbText(value: unknown): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    const text = String(value);
    if (!Number.isFinite(value) || /e/i.test(text)) {
      throw new TypeError(`Cannot render jsonb text: ${text} has no plain decimal form`);
    }
    return text;
  }
  if (Array.isArray(value)) return `[${value.map(jsonbText).join(", ")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .sort(([a], [b]) => jsonbKeyOrder(a, b));
    return `{${
      entries.map(([key, item]) => `${JSON.stringify(key)}: ${jsonbText(item)}`).join(", ")
    }}`;
  }
  throw new TypeError(`Cannot render jsonb text: a ${typeof value}`);
}

/** The three webhook headers and the raw body of one request. */
export interface SignedRequest {
  id: string;
  timestamp: string;
  signature: string;
  body: Uint8Array<ArrayBuffer>;
}

/** Signs `body` (text as UTF-8, or raw bytes) as request `id` at `timestamp`, with every key. */
export function signRequest(
  keys: SigningKey[],
  body: string | Uint8Array,
  options: { id: string; timestamp: number | string },
): SignedRequest {
  const bytes = typeof body === "string" ? encoder.encode(body) : new Uint8Array(body);
  return {
    id: options.id,
    timestamp: String(options.timestamp),
    signature: sign(keys, { id: options.id, timestamp: options.timestamp, payload: bytes }),
    body: bytes,
  };
}

/**
 * Signs claims as dispatch() does: the body is their jsonb text (or `options.body`),
 * webhook-id the run id and webhook-timestamp iat (unless given).
 */
export function signClaims(
  keys: SigningKey[],
  claims: Record<string, unknown>,
  options: { body?: string; id?: string; timestamp?: number | string } = {},
): SignedRequest {
  return signRequest(keys, options.body ?? jsonbText(claims), {
    id: options.id ?? String(claims.run_id),
    timestamp: options.timestamp ?? String(claims.iat),
  });
}

/** The request headers the function expects, as a plain object. */
export function webhookHeaders(request: SignedRequest): Record<string, string> {
  return {
    "content-type": "application/json",
    "webhook-id": request.id,
    "webhook-timestamp": request.timestamp,
    "webhook-signature": request.signature,
  };
}
