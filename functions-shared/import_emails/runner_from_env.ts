/**
 * The import runner as both functions build it from their environment: the
 * cron-auto-sync hand-off and import-emails' "sync now" run exactly the same code.
 *   IMAP_TLS_CA           optional PEM of a private CA that IMAP servers' certificates chain to
 *   IMAP_ALLOW_PRIVATE_HOSTS  "true" lets mailboxes point at loopback/private addresses (default: refused)
 *   IMAP_ALLOW_PLAINTEXT  "true" allows tls_mode 'plain' for any host (default: only
 *                         where IMAP_ALLOW_PRIVATE_HOSTS is true)
 *   IMPORT_MAX_MESSAGES   optional per-run message budget (default 500)
 *   IMPORT_MAX_SECONDS    optional per-run time budget (default 100), cut to what the
 *                         function instance's wall clock leaves (isolate_budget.ts)
 *   FUNCTION_WALL_CLOCK_SECONDS, IMPORT_MAX_CONCURRENT_RUNS, IMPORT_MAX_MESSAGES_PER_INSTANCE
 *                         the instance's shared budget (isolate_budget.ts)
 */
import type { Sql } from "../platform/database.ts";
import { isolateBudgetFromEnv } from "./isolate_budget.ts";
import { isolateShutdownSignal } from "./isolate_shutdown.ts";
import type { Logger } from "../platform/log.ts";
import type { RunStore } from "../runs/run_store.ts";
import { openImapSession } from "./imap_session.ts";
import { createImportRunner, DEFAULT_LIMITS, type ImportRunner } from "./import_run.ts";
import { createMailStore } from "./mail_store.ts";

function positiveInteger(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  if (!/^[1-9][0-9]{0,6}$/.test(value)) {
    throw new Error(`Invalid ${name}: "${value}" is not a positive integer`);
  }
  return Number(value);
}

export function importRunnerFromEnv(
  env: Record<string, string | undefined>,
  deps: { sql: Sql; store: RunStore; log: Logger },
): ImportRunner {
  const caPem = env.IMAP_TLS_CA?.trim() || undefined;
  if (caPem && !caPem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new Error("Invalid IMAP_TLS_CA: expected a PEM certificate");
  }
  const allowPrivateHosts = env.IMAP_ALLOW_PRIVATE_HOSTS === "true";
  const allowPlaintext = allowPrivateHosts || env.IMAP_ALLOW_PLAINTEXT === "true";
  return createImportRunner({
    store: deps.store,
    mail: createMailStore(deps.sql),
    log: deps.log,
    shutdown: isolateShutdownSignal(),
    isolate: isolateBudgetFromEnv(env),
    connect: (mailbox, credential, bounds) =>
      openImapSession(mailbox, credential, { ...bounds, caPem, allowPrivateHosts, allowPlaintext }),
    limits: {
      maxMessages: positiveInteger(
        env.IMPORT_MAX_MESSAGES,
        "IMPORT_MAX_MESSAGES",
        DEFAULT_LIMITS.maxMessages,
      ),
      maxSeconds: positiveInteger(
        env.IMPORT_MAX_SECONDS,
        "IMPORT_MAX_SECONDS",
        DEFAULT_LIMITS.maxSeconds,
      ),
    },
  });
}
