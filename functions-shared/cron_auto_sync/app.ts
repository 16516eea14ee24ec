/**
 * `cron-auto-sync`: the public endpoint pg_cron's signed requests reach.
 *
 * Every check that needs no database runs first, cheapest first: method, content
 * type, size, headers, timestamp window, HMAC, claims. Only a request that passed
 * all of them touches the database, where its id is burned and its run accepted
 * in one transaction. The import then runs in the background, in-process.
 */
import { Hono } from "hono";
import type { Background } from "../platform/background.ts";
import { checkClaims } from "../wire/claims.ts";
import { errorResponse, isJsonContentType, readBodyWithLimit } from "../platform/http.ts";
import type { ImportRunner } from "../import_emails/import_run.ts";
import { errorText, type Logger } from "../platform/log.ts";
import type { AcceptOutcome, RunStore } from "../runs/run_store.ts";
import { type SigningKey, verify } from "../wire/standard_webhooks.ts";
import { createRejectionLog } from "./rejection_log.ts";

export const MAX_BODY_BYTES = 16 * 1024;

export interface CronAutoSyncDeps {
  keyring: SigningKey[];
  store: RunStore;
  runImport: ImportRunner;
  background: Background;
  log: Logger;
  /** Unix milliseconds; injected so tests can move the clock. */
  now?: () => number;
}

// What each refusal from auto_sync.accept_request() answers.
const REFUSALS: Record<Exclude<AcceptOutcome, "accepted">, 404 | 409> = {
  replayed: 409,
  unknown_run: 404,
  wrong_user: 404,
  not_dispatched: 409,
  schedule_disabled: 409,
};

export function createCronAutoSyncApp(deps: CronAutoSyncDeps): Hono {
  const { keyring, store, runImport, background, log } = deps;
  const now = deps.now ?? Date.now;
  const app = new Hono();

  const logRejection = createRejectionLog(log, { now });
  const refuse = (status: number, reason: string, runId?: string) => {
    logRejection(status, reason, runId);
    return errorResponse(status, status === 405 ? { Allow: "POST" } : {});
  };

  // Anything unexpected: one generic answer, and a log line rate-limited like any
  // refusal that needs no key (no stack traces for anyone to provoke at will).
  app.onError((error) => {
    logRejection(500, `unexpected error: ${errorText(error)}`);
    return errorResponse(500);
  });

  app.all("*", async (c) => {
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
    const { run_id: runId, sub: userId } = checked.claims;

    let outcome: AcceptOutcome;
    try {
      outcome = await store.acceptRequest(requestId, runId, userId);
    } catch (error) {
      log.error("Cannot record signed request", { run_id: runId, error: errorText(error) });
      return errorResponse(503);
    }
    if (outcome !== "accepted") return refuse(REFUSALS[outcome], outcome, runId);

    background(runImport({ runId, userId }));
    log.info("Signed request accepted; import handed off", { run_id: runId, user_id: userId });
    return c.json({ run_id: runId }, 202);
  });

  return app;
}
