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

export interface ImportEmailsDeps {
  authenticate: UserAuthenticator;
  store: RunStore;
  runImport: ImportRunner;
  background: Background;
  log: Logger;
}

export function createImportEmailsApp(deps: ImportEmailsDeps): Hono {
  const { authenticate, store, runImport, background, log } = deps;
  const app = new Hono();

  app.use("*", cors());

  app.all("*", async (c) => {
    if (c.req.method !== "POST") return errorResponse(405, { Allow: "POST, OPTIONS" });
    const user = await authenticate(c.req.header("authorization") ?? null);
    if (!user) {
      log.warn("Rejected sync request", { status: 401, reason: "missing or invalid user token" });
      return errorResponse(401);
    }
    let request: Awaited<ReturnType<RunStore["requestManualRun"]>>;
    try {
      request = await store.requestManualRun(user.userId);
    } catch (error) {
      log.error("Cannot record manual run", { user_id: user.userId, error: errorText(error) });
      return errorResponse(503);
    }
    if ("retryAfterSeconds" in request) {
      log.info("Manual sync refused: at most one a minute", { user_id: user.userId });
      return errorResponse(429, { "Retry-After": String(request.retryAfterSeconds) });
    }
    const { runId } = request;
    background(runImport({ runId, userId: user.userId }));
    log.info("Manual sync accepted", { run_id: runId, user_id: user.userId });
    return c.json({ run_id: runId }, 202);
  });

  return app;
}
