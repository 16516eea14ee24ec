/**
 * One import run for one user: the work behind both a verified cron request and a
 * signed-in user's "sync now". The run row tells the truth about how it ended.
 *
 * The IMAP importer is a separate issue; until it lands a run ends honestly as
 * `skipped` with the reason "no mailbox configured", never as `succeeded`.
 */
import { errorText } from "../background.ts";
import type { Logger } from "../log.ts";
import type { RunStore } from "../run_store.ts";

export interface ImportJob {
  runId: string;
  userId: string;
}

export type ImportRunner = (job: ImportJob) => Promise<void>;

export function createImportRunner(deps: { store: RunStore; log: Logger }): ImportRunner {
  const { store, log } = deps;
  return async ({ runId, userId }) => {
    if (!(await store.startRun(runId))) {
      log.warn("Import not started: run is not accepted", { run_id: runId });
      return;
    }
    try {
      await store.finishRun(runId, "skipped", {
        error: "no mailbox configured",
        details: { fetched: 0, inserted: 0, duplicates: 0 },
      });
      log.info("Import skipped", { run_id: runId, user_id: userId, reason: "no mailbox configured" });
    } catch (error) {
      log.error("Import failed", { run_id: runId, error: errorText(error) });
      await store.finishRun(runId, "failed", { error: "Import failed unexpectedly; see the function log" })
        .catch(() => {});
    }
  };
}
