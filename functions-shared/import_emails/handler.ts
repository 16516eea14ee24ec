/** Wires `import-emails` from its environment. Config errors throw here, at start-up. */
import { createBackground } from "../background.ts";
import { connectDatabase } from "../database.ts";
import { createLogger } from "../log.ts";
import { createRunStore } from "../run_store.ts";
import { createUserAuthenticator } from "../user_auth.ts";
import { createImportEmailsApp } from "./app.ts";
import { createImportRunner } from "./import_run.ts";

export function createImportEmailsHandler(env: Record<string, string | undefined>) {
  const log = createLogger("import-emails");
  const store = createRunStore(connectDatabase(env.SUPABASE_DB_URL, "import-emails"));
  const app = createImportEmailsApp({
    authenticate: createUserAuthenticator(env),
    store,
    runImport: createImportRunner({ store, log }),
    background: createBackground(log),
    log,
  });
  return { fetch: app.fetch };
}
