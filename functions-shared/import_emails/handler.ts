/** Wires `import-emails` from its environment, parsed once (config.ts): errors throw at start-up. */
import { createBackground } from "../platform/background.ts";
import { connectDatabase } from "../platform/database.ts";
import { createLogger } from "../platform/log.ts";
import { createRunStore } from "../runs/run_store.ts";
import { createUserAuthenticator } from "./user_auth.ts";
import { createImportEmailsApp } from "./app.ts";
import { importRunnerFromConfig } from "./runner_from_config.ts";
import { importEmailsConfig } from "../platform/config.ts";

export function createImportEmailsHandler(env: Record<string, string | undefined>) {
  const log = createLogger("import-emails");
  const config = importEmailsConfig(env);
  const sql = connectDatabase(config.databaseUrl, "import-emails");
  const store = createRunStore(sql);
  const app = createImportEmailsApp({
    authenticate: createUserAuthenticator(config.auth, { log }),
    store,
    runImport: importRunnerFromConfig(config.importer, { sql, store, log }),
    background: createBackground(log),
    log,
  });
  return { fetch: app.fetch };
}
