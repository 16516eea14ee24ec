/**
 * Continuation at once, end to end: the real pg_cron tick dispatches a first import of
 * more than one run's messages; the run ends partial, the importer calls
 * auto_sync.continue_run, and the database signs and queues the continuation through
 * pg_net at once, which cron-auto-sync verifies and imports, without waiting for a tick
 * or the follow-up minute (20261202100000_auto_sync_continuation.sql).
 */
import assert from "node:assert/strict";
import { connect, createUser, waitFor } from "../support/local_stack.ts";
import { withFastDispatchTick } from "../support/dispatch_tick.ts";
import { addMailbox, appendMessages, createImapUser, message } from "../support/imap.ts";

const sql = connect();

Deno.test("a first import larger than a run is continued at once through pg_net, every message once", async () => {
  const total = 5_200; // the default 5,000 a run, then 200: both within one instance's budget
  const userId = await createUser(sql, "continue");
  const imapUser = await createImapUser();
  await appendMessages(imapUser, "INBOX", Array.from({ length: total }, () => message()));
  const mailboxId = await addMailbox(sql, userId, imapUser);
  try {
    await sql`select auto_sync.enable(${userId})`;
    const runs = await withFastDispatchTick(sql, 2, () =>
      waitFor(async () => {
        const rows = await sql`
          select id, status, error, details, dispatched_at, finished_at, net_request_id
            from auto_sync.runs where user_id = ${userId} order by created_at`;
        return rows.length > 0 && rows.every((row) => row.finished_at) &&
            rows.at(-1)!.status !== "partial"
          ? rows
          : undefined;
      }, { timeoutMs: 60_000, intervalMs: 200 }));

    assert.deepEqual(runs.map((run) => run.status), ["partial", "succeeded"], JSON.stringify(runs));
    const [first, second] = runs;
    assert.deepEqual(
      [
        first.details.requested,
        first.details.fetched,
        first.details.inserted,
        first.details.has_more,
      ],
      [5_000, 5_000, 5_000, true],
      "the details contract finish_run reads",
    );
    assert.equal(second.details.inserted, total - 5_000);
    const gapMs = second.dispatched_at.getTime() - first.finished_at.getTime();
    assert.ok(gapMs >= 0 && gapMs < 1_000, `continued ${gapMs} ms after the first run ended`);
    const [response] =
      await sql`select status_code from net._http_response where id = ${second.net_request_id}`;
    assert.equal(response?.status_code, 202, "the continuation went out through pg_net, accepted");
    const [counts] = await sql`
      select count(*)::int as emails, count(distinct uid)::int as uids
        from public.emails where mailbox_id = ${mailboxId}`;
    assert.deepEqual(counts, { emails: total, uids: total });
    const [schedule] = await sql`
      select extract(epoch from next_run_at - now()) as seconds, consecutive_failures
        from auto_sync.schedules where user_id = ${userId}`;
    assert.ok(
      schedule.seconds > 1_700,
      `the next regular run is an interval away (${schedule.seconds} s)`,
    );
    assert.equal(schedule.consecutive_failures, 0);
  } finally {
    await sql`select auto_sync.disable(${userId})`;
    await sql`delete from auth.users where id = ${userId}`;
  }
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
