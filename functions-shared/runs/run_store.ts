/** Run bookkeeping in auto_sync.runs, through the functions the migration grants. */
import type { Sql } from "../platform/database.ts";

export type AcceptOutcome =
  | "accepted"
  | "replayed"
  | "unknown_run"
  | "wrong_user"
  | "not_dispatched"
  | "schedule_disabled";

export type FinalStatus = "succeeded" | "partial" | "skipped" | "failed";

export interface RunStore {
  /** Burns the request id and moves the run dispatched -> accepted, atomically. */
  acceptRequest(requestId: string, runId: string, userId: string): Promise<AcceptOutcome>;
  /** Records a signed-in user's "sync now" as an accepted run, at most one a minute. */
  requestManualRun(userId: string): Promise<{ runId: string } | { retryAfterSeconds: number }>;
  /**
   * accepted -> running; false when the run was not in `accepted`. `mustFinishBy`: when
   * the function instance running it is gone at the latest (its wall clock), after
   * which reconcile_stopped_runs() calls the run lost.
   */
  startRun(runId: string, options?: { mustFinishBy?: number }): Promise<boolean>;
  finishRun(
    runId: string,
    status: FinalStatus,
    options?: { error?: string; details?: Record<string, unknown> },
  ): Promise<boolean>;
  /**
   * After finishRun, for a run that ended partial with more to import: the database
   * decides (auto_sync.continue_run, the one home of the rule) and queues the
   * continuation, signed, through pg_net; the continuation's run id, or null.
   */
  continueRun(runId: string): Promise<string | null>;
}

export function createRunStore(sql: Sql): RunStore {
  return {
    async acceptRequest(requestId, runId, userId) {
      const [row] = await sql`
        select auto_sync.accept_request(${requestId}, ${runId}::uuid, ${userId}::uuid) as outcome`;
      return row.outcome as AcceptOutcome;
    },
    async requestManualRun(userId) {
      const [row] = await sql`select * from auto_sync.request_manual_run(${userId}::uuid)`;
      return row.run_id
        ? { runId: row.run_id as string }
        : { retryAfterSeconds: row.retry_after_seconds as number };
    },
    async startRun(runId, options = {}) {
      const mustFinishBy = options.mustFinishBy === undefined
        ? null
        : new Date(options.mustFinishBy).toISOString();
      const [row] = await sql`
        select auto_sync.start_run(${runId}::uuid, ${mustFinishBy}::timestamptz) as started`;
      return row.started === true;
    },
    async finishRun(runId, status, options = {}) {
      const details = options.details === undefined ? null : sql.json(options.details as never);
      const [row] = await sql`
        select auto_sync.finish_run(${runId}::uuid, ${status}, ${
        options.error ?? null
      }, ${details}) as finished`;
      return row.finished === true;
    },
    async continueRun(runId) {
      const [row] = await sql`select auto_sync.continue_run(${runId}::uuid) as next_run_id`;
      return (row.next_run_id as string | null) ?? null;
    },
  };
}
