/**
 * Pausing and resuming pg_net's real background worker, as an operator would:
 * `pg_net.batch_size = 0` takes nothing from the queue. The setting is read on reload;
 * restarting the worker makes sure no batch it took before is still in flight.
 * ALTER SYSTEM persists across server restarts, so a paused worker stays paused
 * through the restart tests until `resumeWorker` (or `scripts/stack start`) resets it.
 */
import type postgres from "postgres";
import { waitFor } from "./local_stack.ts";

async function reloadUntil(sql: postgres.Sql, batchSize: string): Promise<void> {
  await sql`select pg_reload_conf()`;
  await waitFor(async () => {
    const [row] = await sql`select current_setting('pg_net.batch_size') as value`;
    return row.value === batchSize ? true : undefined;
  }, { timeoutMs: 10_000, intervalMs: 50 });
}

/** The worker takes no more requests: queued rows stay in net.http_request_queue. */
export async function pauseWorker(sql: postgres.Sql): Promise<void> {
  await sql`alter system set pg_net.batch_size = 0`;
  await reloadUntil(sql, "0");
  await sql`select net.worker_restart()`;
  await sql`select net.wait_until_running()`;
}

/** Back to the default batch size, and the worker woken to send what waits. */
export async function resumeWorker(sql: postgres.Sql): Promise<void> {
  await sql`alter system reset pg_net.batch_size`;
  const [row] = await sql`select boot_val from pg_settings where name = 'pg_net.batch_size'`;
  await reloadUntil(sql, row.boot_val);
  await sql`select net.wake()`;
}
