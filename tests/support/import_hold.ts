/**
 * Holds a mailbox's import after its first committed batch, so a test can act on a
 * run that is mid-import (kill its function, let its instance's wall clock end...).
 * A test-only trigger makes every insert into public.emails for that mailbox, once its
 * folder state has moved (the first batch committed), wait on an advisory lock that
 * `holder`, a connection of the test's own, takes now.
 */
import type postgres from "postgres";

export interface ImportHold {
  /** Lets the held insert (and every later one) go on. */
  release(): Promise<void>;
  /** Drops the trigger and its function; safe to call more than once. */
  remove(): Promise<void>;
}

export async function holdImportAfterFirstBatch(
  sql: postgres.Sql,
  holder: postgres.Sql,
  mailboxId: string,
): Promise<ImportHold> {
  const name = `test_import_hold_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const lockKey = 0x5107_0000 + Math.floor(Math.random() * 0xffff);
  await sql.unsafe(`
    create function public.${name}() returns trigger language plpgsql as $fn$
    begin
      if exists (select 1 from auto_sync.folder_state f where f.mailbox_id = new.mailbox_id and f.last_uid > 0) then
        perform pg_advisory_xact_lock(${lockKey});
      end if;
      return new;
    end $fn$;
    create trigger ${name} before insert on public.emails
      for each row when (new.mailbox_id = '${mailboxId}'::uuid)
      execute function public.${name}();`);
  const reserved = await holder.reserve();
  await reserved`select pg_advisory_lock(${lockKey})`;
  return {
    async release() {
      await reserved`select pg_advisory_unlock(${lockKey})`;
      reserved.release();
    },
    async remove() {
      await sql.unsafe(`drop trigger if exists ${name} on public.emails;
                        drop function if exists public.${name}();`);
    },
  };
}
