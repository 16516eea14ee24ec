/**
 * Requests to cron-auto-sync shaped exactly as auto_sync.dispatch() sends them, and
 * what every refusal must look like, for the unit tests of its app and of its
 * signed-request middleware (functions-shared/cron_auto_sync/).
 */
import assert from "node:assert/strict";
import {
  buildClaims,
  jsonbText,
  signClaims,
  webhookHeaders,
} from "../../functions-shared/wire/client/signed_request.ts";
import { generateSecret, parseKeyring } from "../../functions-shared/wire/standard_webhooks.ts";

export const NOW = 1_800_000_000; // unix seconds of the injected clock
export const USER_ID = "6a1f2e3d-4c5b-4a69-8b7c-1d2e3f4a5b6c";
export const URL = "http://localhost:54321/functions/v1/cron-auto-sync";
export const SECRET = generateSecret();
export const OTHER_SECRET = generateSecret();

export const ERROR_CODES: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  503: "unavailable",
};

export interface RequestOptions {
  claims?: Record<string, unknown>;
  /** Raw body text replacing the claims. */
  body?: string;
  /** Signed webhook-id / webhook-timestamp (default: run_id / iat). */
  id?: string;
  timestamp?: number;
  /** Keys that sign (default: the app's secret). */
  signWith?: string[];
  /** Header overrides; null removes a header. */
  headers?: Record<string, string | null>;
  method?: string;
}

/** A request shaped exactly like auto_sync.dispatch() sends it. */
export function signedRequest(options: RequestOptions = {}) {
  const claims: Record<string, unknown> = {
    ...buildClaims(USER_ID, crypto.randomUUID(), { iat: NOW }),
    ...options.claims,
  };
  const keyring = parseKeyring(
    (options.signWith ?? [SECRET]).map((secret) => `v1,${secret}`).join("|"),
  );
  const body = options.body ?? jsonbText(claims);
  const signed = signClaims(keyring, claims, {
    body,
    id: options.id,
    timestamp: options.timestamp,
  });
  const headers = new Headers(webhookHeaders(signed));
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  const method = options.method ?? "POST";
  const request = new Request(URL, {
    method,
    headers,
    body: method === "GET" || method === "HEAD" ? null : body,
  });
  return { request, claims, body };
}

/** A stream of `size` bytes in 1 KiB chunks, with no Content-Length. */
export function streamOf(size: number): ReadableStream<Uint8Array> {
  let left = size;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left <= 0) return controller.close();
      const chunk = new Uint8Array(Math.min(1024, left)).fill(0x20);
      left -= chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
}

/** Asserts `text` holds no signing secret, nor any part of a key. */
export function assertNoSecret(text: string, label: string) {
  for (const secret of [SECRET, OTHER_SECRET]) {
    assert.ok(!text.includes(secret), `${label} contains a signing secret`);
    assert.ok(!text.includes(secret.slice("whsec_".length)), `${label} contains a key's base64`);
    assert.ok(
      !text.includes(secret.slice("whsec_".length, "whsec_".length + 12)),
      `${label} contains key material`,
    );
  }
  assert.ok(!text.includes("whsec_"), `${label} mentions whsec_`);
}

/**
 * Checks a refusal as a caller reads it: the status, a JSON body that names only the
 * kind of error, no secret; returns the response. What the app did not do is the caller's.
 */
export async function assertGenericRefusal(response: Response, status: number) {
  const text = await response.text();
  assert.equal(response.status, status, text);
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(JSON.parse(text), { error: ERROR_CODES[status] });
  assertNoSecret(text, "response body");
  return response;
}
