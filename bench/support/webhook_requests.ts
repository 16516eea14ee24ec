/**
 * Requests shaped like the ones auto_sync.dispatch() sends, built by the one wire
 * module (functions-shared/wire/client/signed_request.ts): the claims body as Postgres prints
 * jsonb, the run id as webhook-id, unix seconds as webhook-timestamp.
 */
import {
  buildClaims,
  jsonbText,
  nowSeconds,
  type SignedRequest,
  signRequest,
  webhookHeaders,
} from "../../functions-shared/wire/client/signed_request.ts";
import type { SigningKey } from "../../functions-shared/wire/standard_webhooks.ts";

export { nowSeconds, webhookHeaders };

export interface BenchRequest extends SignedRequest {
  /** The claims body as text (what a string-taking verifier gets). */
  text: string;
}

/** `count` distinct requests stamped `timestamp`, each signed with every key of `keys`. */
export function buildRequests(
  keys: SigningKey[],
  count: number,
  timestamp = nowSeconds(),
): BenchRequest[] {
  return Array.from({ length: count }, () => {
    const id = crypto.randomUUID();
    const text = jsonbText(buildClaims(crypto.randomUUID(), id, { iat: timestamp }));
    return { ...signRequest(keys, text, { id, timestamp }), text };
  });
}
