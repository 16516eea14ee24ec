/**
 * What the real pg_net worker does that the project relies on (issue 10): it sends a
 * batch of queued requests together and records no answer until the whole batch is
 * done, so one slow endpoint holds the others' answers back; every answer of a batch
 * carries the batch's start as `created`; a timeout and a refused connection come back
 * as `timed_out` / `error_msg`, which reconcile_runs() turns into truthful outcomes.
 */
import assert from "node:assert/strict";
import { connect, createUser, waitFor } from "../support/local_stack.ts";
import { createDispatchedRun } from "../support/signed_requests.ts";
import { queueLikeDispatch } from "../support/sent_requests.ts";
import { pauseWorker, resumeWorker } from "../support/pg_net_worker.ts";
import { testPorts } from "../../local-stack/urls.ts";

const sql = connect();

Deno.test("a slow endpoint holds its batch's answers back; reconcile_runs() reads the real timed_out and error_msg", async () => {
  const slowAnswer = new AbortController();
  const slow = Deno.serve(
    { hostname: "127.0.0.1", port: testPorts.slowEndpoint, onListen: () => {} },
    async () => {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 20_000);
        slowAnswer.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve(undefined);
        });
      });
      return new Response(null, { status: 202 });
    },
  );
  const users: string[] = [];
  try {
    const runOf = async (label: string) => {
      const userId = await createUser(sql, `delivery-${label}`);
      users.push(userId);
      return { userId, runId: await createDispatchedRun(sql, userId) };
    };
    const fast = await runOf("fast");
    const timingOut = await runOf("slow");
    const refused = await runOf("refused");

    // One batch: the worker is paused while the three are queued, then woken once.
    await pauseWorker(sql);
    const { netId: fastId } = await queueLikeDispatch(sql, fast);
    const { netId: slowId } = await queueLikeDispatch(sql, {
      ...timingOut,
      url: `http://127.0.0.1:${testPorts.slowEndpoint}/cron-auto-sync`,
    });
    const { netId: refusedId } = await queueLikeDispatch(sql, {
      ...refused,
      url: `http://127.0.0.1:${testPorts.closedPort}/cron-auto-sync`,
    });
    const timeoutMs = await sql`select request_timeout_ms from auto_sync.settings`
      .then(([row]) => row.request_timeout_ms as number);
    await resumeWorker(sql);

    // The function accepts the fast request at once, but pg_net records its 202 only
    // when the batch ends, after the slow request times out.
    await waitFor(async () => {
      const [run] = await sql`select accepted_at from auto_sync.runs where id = ${fast.runId}`;
      return run.accepted_at ?? undefined;
    }, { timeoutMs: 15_000, intervalMs: 50 });
    const [held] = await sql`
      select count(*)::int as n, (select count(*)::int from net.http_request_queue where id = ${fastId}::bigint) as queued
        from net._http_response where id = ${fastId}::bigint`;
    assert.deepEqual({ ...held }, { n: 0, queued: 1 }, "no answer recorded while the batch runs");

    const answers = await waitFor(async () => {
      const rows = await sql`
        select id::text, status_code, timed_out, error_msg, created from net._http_response
         where id in (${fastId}::bigint, ${slowId}::bigint, ${refusedId}::bigint) order by id`;
      return rows.length === 3 ? rows : undefined;
    }, { timeoutMs: timeoutMs + 20_000, intervalMs: 100 });
    const byId = Object.fromEntries(answers.map((row) => [row.id, row]));
    assert.equal(byId[fastId].status_code, 202);
    assert.equal(byId[slowId].status_code, null);
    assert.equal(byId[slowId].timed_out, true);
    assert.match(byId[slowId].error_msg, new RegExp(`^Timeout of ${timeoutMs} ms reached`));
    assert.equal(byId[refusedId].status_code, null);
    assert.match(byId[refusedId].error_msg, /^Couldn't connect to server/);
    assert.equal(
      new Set(answers.map((row) => (row.created as Date).getTime())).size,
      1,
      "every answer of a batch carries the batch's start as `created`",
    );

    await sql`select auto_sync.reconcile_runs()`;
    const runs = await sql`
      select id, status, error from auto_sync.runs where id in (${fast.runId}, ${timingOut.runId}, ${refused.runId})`;
    const outcome = Object.fromEntries(runs.map((run) => [run.id, run]));
    assert.equal(outcome[timingOut.runId].status, "failed");
    assert.match(
      outcome[timingOut.runId].error,
      new RegExp(`^Request not delivered: Timeout of ${timeoutMs} ms reached`),
    );
    assert.equal(outcome[refused.runId].status, "failed");
    assert.match(
      outcome[refused.runId].error,
      /^Request not delivered: Couldn't connect to server/,
    );
    // The fast run's outcome is the function's to write (no mailbox: skipped), never reconcile's.
    const finished = await waitFor(async () => {
      const [run] = await sql`select status from auto_sync.runs where id = ${fast.runId}`;
      return run.status === "dispatched" || run.status === "accepted" || run.status === "running"
        ? undefined
        : run.status as string;
    }, { timeoutMs: 15_000 });
    assert.equal(finished, "skipped");
  } finally {
    slowAnswer.abort();
    await resumeWorker(sql);
    await slow.shutdown();
    if (users.length) {
      await sql`
        delete from net._http_response h using auto_sync.runs r
         where r.net_request_id = h.id and r.user_id = any(${users}::uuid[])`;
      await sql`delete from auth.users where id = any(${users}::uuid[])`;
    }
  }
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
