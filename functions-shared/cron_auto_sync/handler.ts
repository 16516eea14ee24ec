/**
 * Wires `cron-auto-sync` from its environment. A missing or invalid keyring throws
 * here, so the function fails closed at start-up instead of accepting anything.
 */
import { createBackground } from "../platform/background.ts";
import { connectDatabase } from "../platform/database.ts";
import { importRunnerFromEnv } from "../import_emails/runner_from_env.ts";
import { createLogger } from "../platform/log.ts";
import { createRunStore } from "../runs/run_store.ts";
import { parseKeyring } from "../wire/standard_webhooks.ts";
import { createCronAutoSyncApp } from "./app.ts";

export function createCronAutoSyncHandler(env: Record<string, string | undefined>) {
  const log = createLogger("cron-auto-sync");
  const keyring = parseKeyring(env.AUTO_SYNC_SIGNING_SECRETS);
  const sql = connectDatabase(env.SUPABASE_DB_URL, "cron-auto-sync");
  const store = createRunStore(sql);
  const app = createCronAutoSyncApp({
    keyring,
    store,
    // The same runner import-emails serves: the hand-off is a function call.
    runImport: importRunnerFromEnv(env, { sql, store, log }),
    background: createBackground(log),
    log,
  });
  return { fetch: app.fetch };
}
