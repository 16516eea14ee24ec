/**
 * The import runner as both functions build it from their configuration (config.ts
 * ImporterConfig): the cron-auto-sync hand-off and import-emails' "sync now" run
 * exactly the same code, with imapflow and the configured CA and host policy, and one
 * access-token cache for OAuth mailboxes per function instance.
 */
import type { ImporterConfig } from "../platform/config.ts";
import type { Sql } from "../platform/database.ts";
import type { Logger } from "../platform/log.ts";
import type { RunStore } from "../runs/run_store.ts";
import { openImapSession } from "./imap_session.ts";
import { createImportRunner, type ImportRunner } from "./import_run.ts";
import { createIsolateBudget } from "./isolate_budget.ts";
import { isolateShutdownSignal } from "./isolate_shutdown.ts";
import { createMailStore } from "./mail_store.ts";
import { createOAuthAccess } from "./oauth_access.ts";
import { createProviderClients } from "../oauth/provider_clients.ts";

export function importRunnerFromConfig(
  config: ImporterConfig,
  deps: { sql: Sql; store: RunStore; log: Logger },
): ImportRunner {
  const mail = createMailStore(deps.sql);
  return createImportRunner({
    store: deps.store,
    mail,
    log: deps.log,
    oauth: createOAuthAccess({
      providers: createProviderClients(config.oauth),
      store: mail,
      log: deps.log,
    }),
    shutdown: isolateShutdownSignal(),
    isolate: createIsolateBudget(config.isolate),
    connect: (mailbox, credential, bounds) =>
      openImapSession(mailbox, credential, { ...bounds, ...config.imap }),
    limits: config.limits,
  });
}
