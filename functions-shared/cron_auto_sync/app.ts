/**
 * `cron-auto-sync`: the public endpoint pg_cron's signed requests reach.
 *
 * signed_request_auth.ts lets through only a request that is signed, fresh and
 * claims a run for this function (no database work before that). The route then
 * accepts it: its id is burned and its run accepted in one transaction
 * (auto_sync.accept_request), and the import is handed off to run in the background,
 * in-process.
 */
import { Hono } from "hono";
import type { ImportRunner } from "../import_emails/import_run.ts";
import type { Background } from "../platform/background.ts";
import { errorResponse } from "../platform/http.ts";
import { errorText, type Logger } from "../platform/log.ts";
import type { AcceptOutcome, RunStore } from "../runs/run_store.ts";
import type { SigningKey } from "../wire/standard_webhooks.ts";
import { createRejectionLog } from "./rejection_log.ts";
import { signedRequestAuth, type SignedRequestEnv } from "./signed_request_auth.ts";

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

export function createCronAutoSyncApp(deps: CronAutoSyncDeps): Hono<SignedRequestEnv> {
  const { keyring, store, runImport, background, log } = deps;
  const now = deps.now ?? Date.now;
  const app = new Hono<SignedRequestEnv>();
  const logRejection = createRejectionLog(log, { now });

  // Anything unexpected: one generic answer, and a log line rate-limited like any
  // refusal that needs no key (no stack traces for anyone to provoke at will).
  app.onError((error) => {
    logRejection(500, `unexpected error: ${errorText(error)}`);
    return errorResponse(500);
  });

  app.use("*", signedRequestAuth({ keyring, logRejection, now }));

  app.all("*", async (c) => {
    const { requestId, runId, userId } = c.get("signedRun");
    let outcome: AcceptOutcome;
    try {
      outcome = await store.acceptRequest(requestId, runId, userId);
    } catch (error) {
      log.error("Cannot record signed request", { run_id: runId, error: errorText(error) });
      return errorResponse(503);
    }
    if (outcome !== "accepted") {
      logRejection(REFUSALS[outcome], outcome, runId);
      return errorResponse(REFUSALS[outcome]);
    }

    background(runImport({ runId, userId }));
    log.info("Signed request accepted; import handed off", { run_id: runId, user_id: userId });
    return c.json({ run_id: runId }, 202);
  });

  return app;
}
