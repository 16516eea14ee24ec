/**
 * The dispatch benchmarks' schedules: their own users and schedules, made set-based
 * inside a transaction the benchmark rolls back (createBenchSchedules), and measured
 * alone.
 *
 * They measure their own schedules only, whatever else the
 * database holds (a stack left full of test users has due schedules of its own).
 * Inside the benchmark's transaction, which is always rolled back, every other
 * schedule due now is disabled: `now()` is fixed for the whole transaction, so no
 * other schedule becomes due before the rollback. The rows stay locked until then;
 * the stack's own pg_cron tick takes schedules `for update skip locked`, so it skips
 * them meanwhile instead of waiting; anything else updating one of them (a run ending)
 * waits until the rollback, a few seconds.
 */
import type postgres from "postgres";
import { functionsUrl } from "../../local-stack/urls.ts";

/**
 * `count` new auth users, each with an enabled 30-minute schedule: every `dueEvery`-th
 * due (next_run_at in the last minute; 1: all, 0: none), the rest spread over the
 * next 30 minutes as jittered schedules would be. Sets batch_limit and the endpoint,
 * then `analyze`s, as autovacuum would have by the time of a real tick.
 */
export async function createBenchSchedules(
  db: postgres.ReservedSql,
  options: { count: number; dueEvery: number; batchLimit: number },
): Promise<void> {
  const { count, dueEvery, batchLimit } = options;
  await db`
    with users as (
      insert into auth.users (id, email)
      select id, 'bench-' || id || '@example.test'
        from (select gen_random_uuid() as id from generate_series(1, ${count})) g
      returning id
    ), numbered as (select id, row_number() over () as n from users)
    insert into auto_sync.schedules (user_id, every, enabled, next_run_at)
    select id, interval '30 minutes', true,
           case when ${dueEvery} > 0 and n % ${dueEvery} = 0 then now() - random() * interval '1 minute'
                else now() + interval '1 minute' + random() * interval '29 minutes' end
      from numbered`;
  await db`
    update auto_sync.settings
       set batch_limit = ${batchLimit}, endpoint_url = ${`${functionsUrl}/cron-auto-sync`}`;
  await db`analyze auth.users, auto_sync.schedules, auto_sync.runs`;
}

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
