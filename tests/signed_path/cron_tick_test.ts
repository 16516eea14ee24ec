/**
 * End to end with nothing simulated: the real pg_cron job fires auto_sync.dispatch(),
 * pg_net's real worker delivers the signed request, cron-auto-sync verifies it and
 * hands off to import-emails, which imports the user's mail from the real IMAP server,
 * and the run row reaches its final status. Then the request, as captured from the
 * queue inside the dispatching transaction, is replayed and refused.
 *
 * The job ticks every 2 s during the test (pg_cron 1.6 seconds schedule), then its
 * usual schedule is restored.
 */
import assert from "node:assert/strict";
import { connect, createUser, waitFor } from "../support/local_stack.ts";
import { send } from "../support/signed_requests.ts";
import { capturedRequest, startCapture, stopCapture } from "../support/sent_requests.ts";
import { withFastDispatchTick } from "../support/dispatch_tick.ts";
import { addMailbox, appendMessages, createImapUser, message } from "../support/imap.ts";

const sql = connect();

Deno.test("pg_cron tick -> signed request -> cron-auto-sync -> import-emails -> rows in emails", async (t) => {
  const userId = await createUser(sql, "cron");
  const imapUser = await createImapUser();
  const mailboxId = await addMailbox(sql, userId, imapUser);
  const subjects = ["first", "second", "third"];
  await appendMessages(imapUser, "INBOX", subjects.map((subject) => message({ subject })));
  await startCapture(sql);
  await sql`select auto_sync.enable(${userId})`;

  const run = await withFastDispatchTick(sql, 2, () =>
    waitFor(async () => {
      const [row] = await sql`
        select * from auto_sync.runs where user_id = ${userId} and finished_at is not null`;
      return row;
    }, { timeoutMs: 80_000, intervalMs: 500 }));

  await t.step("the run is the schedule's, verified, and imported the user's mail", async () => {
    assert.equal(run.trigger, "schedule");
    assert.equal(run.status, "succeeded", run.error);
    assert.equal(run.details.inserted, 3);
    assert.ok(run.dispatched_at <= run.accepted_at && run.accepted_at <= run.finished_at);
    const emails =
      await sql`select subject, user_id from public.emails where mailbox_id = ${mailboxId} order by uid`;
    assert.deepEqual(emails.map((row) => row.subject), subjects);
    assert.ok(emails.every((row) => row.user_id === userId));
  });

  await t.step("it was dispatched by the pg_cron job, which reported success", async () => {
    const [detail] = await sql`
      select d.status, d.start_time
        from cron.job_run_details d join cron.job j using (jobid)
       where j.jobname = 'auto-sync-dispatch'
         and d.start_time between ${run.dispatched_at}::timestamptz - interval '5 seconds'
                              and ${run.dispatched_at}::timestamptz + interval '1 second'
       order by abs(extract(epoch from d.start_time - ${run.dispatched_at}::timestamptz))
       limit 1`;
    assert.ok(detail, "a cron.job_run_details row for the tick that dispatched the run");
    assert.equal(detail.status, "succeeded");
  });

  await t.step("pg_net recorded the function's 202 under the run's request id", async () => {
    const [response] =
      await sql`select status_code, content from net._http_response where id = ${run.net_request_id}`;
    assert.equal(response.status_code, 202);
    assert.deepEqual(JSON.parse(response.content), { run_id: run.id });
  });

  await t.step("the schedule moved on by its interval plus at most 10 % jitter", async () => {
    const [schedule] = await sql`
      select extract(epoch from next_run_at - ${run.dispatched_at}::timestamptz) as seconds, last_outcome
        from auto_sync.schedules where user_id = ${userId}`;
    assert.ok(
      schedule.seconds >= 1800 && schedule.seconds <= 1980,
      `next run in ${schedule.seconds} s`,
    );
    assert.equal(schedule.last_outcome, "succeeded");
  });

  await t.step("replaying the captured request is refused and changes nothing", async () => {
    const captured = await capturedRequest(sql, run.net_request_id);
    assert.ok(captured, "the dispatching transaction queued the request we captured");
    assert.equal(captured.id, run.id);
    const response = await send(captured);
    assert.equal(response.status, 409);
    assert.deepEqual(await response.json(), { error: "conflict" });
    const [after] = await sql`select status, finished_at from auto_sync.runs where id = ${run.id}`;
    assert.equal(after.status, "succeeded");
    assert.deepEqual(after.finished_at, run.finished_at);
  });

  await sql`select auto_sync.disable(${userId})`;
  await stopCapture(sql);
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
