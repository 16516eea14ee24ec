/**
 * Hono middleware that lets through only a signed auto-sync request, as
 * auto_sync.dispatch() sends it. Every check needs no database and runs cheapest
 * first: method, content type, size, Standard Webhooks headers, timestamp window,
 * HMAC (wire/standard_webhooks.ts), claims (wire/claims.ts). A request that passes
 * reaches the route with its verified run in `c.get("signedRun")`; any other is
 * answered here with a generic refusal, its reason logged (rejection_log.ts).
 */
import type { MiddlewareHandler } from "hono";
import { errorResponse, isJsonContentType, readBodyWithLimit } from "../platform/http.ts";
import { checkClaims } from "../wire/claims.ts";
import { type SigningKey, verify } from "../wire/standard_webhooks.ts";
import type { RejectionLog } from "./rejection_log.ts";

export const MAX_BODY_BYTES = 16 * 1024;

/** What the route gets from a request that passed: its signed id, its run and user. */
export interface SignedRun {
  requestId: string;
  runId: string;
  userId: string;
}

export type SignedRequestEnv = { Variables: { signedRun: SignedRun } };

export function signedRequestAuth(options: {
  keyring: SigningKey[];
  logRejection: RejectionLog;
  /** Unix milliseconds; injected so tests can move the clock. */
  now?: () => number;
}): MiddlewareHandler<SignedRequestEnv> {
  const { keyring, logRejection } = options;
  const now = options.now ?? Date.now;
  const refuse = (status: number, reason: string, runId?: string) => {
    logRejection(status, reason, runId);
    return errorResponse(status, status === 405 ? { Allow: "POST" } : {});
  };

  return async (c, next) => {
    const request = c.req.raw;
    if (request.method !== "POST") return refuse(405, "method is not POST"); // a fixed reason: nothing caller-chosen in logs
    if (!isJsonContentType(request.headers.get("content-type"))) {
      return refuse(415, "content type is not application/json");
    }
    const body = await readBodyWithLimit(request, MAX_BODY_BYTES);
    if (body === null) return refuse(413, `body over ${MAX_BODY_BYTES} bytes or cut short`);

    const nowSeconds = Math.floor(now() / 1000);
    const verified = verify(
      keyring,
      {
        id: request.headers.get("webhook-id"),
        timestamp: request.headers.get("webhook-timestamp"),
        signature: request.headers.get("webhook-signature"),
      },
      body,
      { nowSeconds },
    );
    if (!verified.ok) return refuse(401, verified.reason);
    const requestId = verified.id; // safe to log from here: it is signed

    const checked = checkClaims(body, { requestId, timestamp: verified.timestamp, nowSeconds });
    if (!checked.ok) return refuse(checked.status, checked.reason, requestId);

    c.set("signedRun", { requestId, runId: checked.claims.run_id, userId: checked.claims.sub });
    await next();
  };
}
