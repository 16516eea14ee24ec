/**
 * `import-emails` over HTTP: a signed-in user's "sync now". The token decides whose
 * mail is imported; nothing in the request can name another user.
 */
import { Hono } from "hono";
import type { Background } from "../platform/background.ts";
import { errorResponse } from "../platform/http.ts";
import { errorText, type Logger } from "../platform/log.ts";
import type { RunStore } from "../runs/run_store.ts";
import type { UserAuthenticator } from "./user_auth.ts";
import { cors } from "./cors.ts";
import type { ImportRunner } from "./import_run.ts";
import {
  createRefusalMemory,
  MANUAL_RUN_GAP_SECONDS,
  type RefusalMemory,
} from "./refusal_memory.ts";

export interface ImportEmailsDeps {
  authenticate: UserAuthenticator;
  store: RunStore;
  runImport: ImportRunner;
  background: Background;
  log: Logger;
  /** Refusals this instance answers without the database (refusal_memory.ts). */
  refusals?: RefusalMemory;
}

export function createImportEmailsApp(deps: ImportEmailsDeps): Hono {
  const { authenticate, store, runImport, background, log } = deps;
  const refusals = deps.refusals ?? createRefusalMemory();
  const app = new Hono();

  app.use("*", cors());

  app.all("*", async (c) => {
    if (c.req.method !== "POST") return errorResponse(405, { Allow: "POST, OPTIONS" });
    const user = await authenticate(c.req.header("authorization") ?? null);
    if (!user) {
      log.warn("Rejected sync request", { status: 401, reason: "missing or invalid user token" });
      return errorResponse(401);
    }
    const known = refusals.retryAfter(user.userId);
    if (known !== null) {
      // This instance already knows the answer: no transaction, no lock.
      return errorResponse(429, { "Retry-After": String(known) });
    }
    let request: Awaited<ReturnType<RunStore["requestManualRun"]>>;
    try {
      request = await store.requestManualRun(user.userId);
    } catch (error) {
      log.error("Cannot record manual run", { user_id: user.userId, error: errorText(error) });
      return errorResponse(503);
    }
    if ("retryAfterSeconds" in request) {
      refusals.remember(user.userId, request.retryAfterSeconds);
      log.info("Manual sync refused: at most one a minute", { user_id: user.userId });
      return errorResponse(429, { "Retry-After": String(request.retryAfterSeconds) });
    }
    const { runId } = request;
    refusals.remember(user.userId, MANUAL_RUN_GAP_SECONDS);
    background(runImport({ runId, userId: user.userId }));
    log.info("Manual sync accepted", { run_id: runId, user_id: user.userId });
    return c.json({ run_id: runId }, 202);
  });

  return app;
}
