/**
 * pg_cron 1.6 takes second-level schedules. While `task` runs, the one dispatch job
 * (auto-sync-dispatch) ticks every `seconds` seconds instead of its usual schedule; then its
 * schedule is put back as it was. Used by the demo and the end-to-end tick test, so
 * neither waits for the real tick.
 */
import type postgres from "postgres";

export async function withFastDispatchTick<T>(
  sql: postgres.Sql,
  seconds: number,
  task: () => Promise<T>,
): Promise<T> {
  const [job] = await sql`
    select jobid, schedule from cron.job where jobname = 'auto-sync-dispatch'`;
  if (!job) throw new Error(`No cron job "auto-sync-dispatch": apply the migrations`);
  await sql`select cron.alter_job(${job.jobid}::bigint, schedule := ${`${seconds} seconds`})`;
  try {
    return await task();
  } finally {
    await sql`select cron.alter_job(${job.jobid}::bigint, schedule := ${job.schedule})`;
  }
}
