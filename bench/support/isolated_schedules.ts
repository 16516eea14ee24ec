/**
 * The dispatch benchmarks measure their own schedules only, whatever else the
 * database holds (a stack left full of test users has due schedules of its own).
 * Inside the benchmark's transaction, which is always rolled back, every other
 * schedule due now is disabled: `now()` is fixed for the whole transaction, so no
 * other schedule becomes due before the rollback. The rows stay locked until then;
 * the stack's own pg_cron tick takes schedules `for update skip locked`, so it skips
 * them meanwhile instead of waiting; anything else updating one of them (a run ending)
 * waits until the rollback, a few seconds.
 */
import type postgres from "postgres";

/** Disables the schedules due now (in the caller's open transaction); returns how many. */
export async function setAsideOtherDueSchedules(db: postgres.ReservedSql): Promise<number> {
  const rows = await db`
    update auto_sync.schedules set enabled = false
     where enabled and next_run_at <= now()
    returning user_id`;
  return rows.length;
}

export function describeSetAside(count: number): string {
  return count === 0
    ? "no other schedule was due"
    : `${count} other due schedule(s) already in the database set aside (disabled inside the rolled-back transaction)`;
}
