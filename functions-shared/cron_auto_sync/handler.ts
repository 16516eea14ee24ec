/**
 * Wires `cron-auto-sync` from its environment, parsed once (config.ts). A missing or
 * invalid keyring throws here, so the function fails closed at start-up instead of
 * accepting anything.
 */
import { createBackground } from "../platform/background.ts";
import { connectDatabase } from "../platform/database.ts";
import { importRunnerFromConfig } from "../import_emails/runner_from_config.ts";
import { cronAutoSyncConfig } from "../platform/config.ts";
import { createLogger } from "../platform/log.ts";
import { createRunStore } from "../runs/run_store.ts";
import { createCronAutoSyncApp } from "./app.ts";

export function createCronAutoSyncHandler(env: Record<string, string | undefined>) {
  const log = createLogger("cron-auto-sync");
  const config = cronAutoSyncConfig(env);
  const sql = connectDatabase(config.databaseUrl, "cron-auto-sync");
  const store = createRunStore(sql);
  const app = createCronAutoSyncApp({
    keyring: config.keyring,
    store,
    // The same runner import-emails serves: the hand-off is a function call.
    runImport: importRunnerFromConfig(config.importer, { sql, store, log }),
    background: createBackground(log),
    log,
  });
  return { fetch: app.fetch };
}
