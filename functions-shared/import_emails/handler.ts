/** Wires `import-emails` from its environment. Config errors throw here, at start-up. */
import { createBackground } from "../platform/background.ts";
import { connectDatabase } from "../platform/database.ts";
import { createLogger } from "../platform/log.ts";
import { createRunStore } from "../runs/run_store.ts";
import { createUserAuthenticator } from "./user_auth.ts";
import { createImportEmailsApp } from "./app.ts";
import { importRunnerFromEnv } from "./runner_from_env.ts";

export function createImportEmailsHandler(env: Record<string, string | undefined>) {
  const log = createLogger("import-emails");
  const sql = connectDatabase(env.SUPABASE_DB_URL, "import-emails");
  const store = createRunStore(sql);
  const app = createImportEmailsApp({
    authenticate: createUserAuthenticator(env, { log }),
    store,
    runImport: importRunnerFromEnv(env, { sql, store, log }),
    background: createBackground(log),
    log,
  });
  return { fetch: app.fetch };
}
