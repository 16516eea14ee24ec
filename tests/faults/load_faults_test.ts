/**
 * Load and faults, as tests (issue 5, part 5), against the running local stack:
 *
 *   1. 1,000 signed requests at concurrency 50 through the gateway: each run accepted
 *      exactly once and finished; the same 1,000 again are all refused (409).
 *   2. Postgres restarted while dispatch() runs, with `-m fast` and with `-m immediate`
 *      (a crash): nothing half-done (no request without its run; after a clean restart
 *      no run without its request). A crash empties pg_net's UNLOGGED queue and resets
 *      its unlogged id sequence: committed, unsent requests vanish, request ids are
 *      handed out again, and reconcile_runs() calls the runs lost and retries.
 *   3. pg_net's real worker paused (pg_net.batch_size = 0), its queue left ten minutes
 *      old, then resumed: no burst beyond the batch limit, the stale requests refused
 *      and reconciled as rejected with a retry, and every user synced in the end.
 *   4. The cron-auto-sync process killed mid-import (held on a test-only trigger after
 *      its first batch): the run ends lost, is retried, and no message is stored twice.
 *
 * Time is moved where the code reads it (queued request timestamps, run rows), never
 * waited for. Each test creates its own users (email tag `lf-<tag>-`), and deletes
 * them, their runs, ledger ids and pg_net rows in `finally`; pg_net's worker is
 * resumed and the gateway left running.
 */
import assert from "node:assert/strict";
import { holdImportAfterFirstBatch, type ImportHold } from "../support/import_hold.ts";
import postgresClient from "postgres";
import type postgres from "postgres";
import { addMailbox, appendMessages, createImapUser, message } from "../support/imap.ts";
import { connect, dbUrl, stateDir, waitFor } from "../support/local_stack.ts";
import { pauseWorker, resumeWorker } from "../support/pg_net_worker.ts";
import { mapLimit } from "../support/map_limit.ts";
import { send, type SignedRequest } from "../support/signed_requests.ts";

const repo = new URL("../../", import.meta.url).pathname;

function tag(name: string) {
  return `lf-${name}-${crypto.randomUUID().slice(0, 8)}-`;
}

/** n auth users with `email like tag%`, set-based. */
async function createUsers(sql: postgres.Sql, prefix: string, n: number): Promise<void> {
  await sql`
    insert into auth.users (id, email)
    select gen_random_uuid(), ${prefix} || g || '@example.test' from generate_series(1, ${n}::int) g`;
}

/** Removes everything the tagged users left: pg_net rows, ledger ids, users (runs, schedules cascade). */
async function cleanupUsers(sql: postgres.Sql, prefix: string): Promise<void> {
  const like = `${prefix}%`;
  await sql`
    delete from net.http_request_queue q
     where (q.headers ->> 'webhook-id') in (
           select r.id::text from auto_sync.runs r join auth.users u on u.id = r.user_id where u.email like ${like})`;
  await sql`
    delete from net._http_response h
     where h.id in (select r.net_request_id from auto_sync.runs r join auth.users u on u.id = r.user_id
                     where u.email like ${like} and r.net_request_id is not null)`;
  await sql`
    delete from auto_sync.used_request_ids l
     where l.request_id in (
           select r.id::text from auto_sync.runs r join auth.users u on u.id = r.user_id where u.email like ${like})`;
  await sql`delete from auth.users where email like ${like}`;
}

/** `scripts/stack start` is idempotent: it starts only what is not running. */
async function ensureStack(): Promise<void> {
  const output = await new Deno.Command(`${repo}scripts/stack`, {
    args: ["start"],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!output.success) {
    throw new Error(
      `Cannot restart the stack: ${new TextDecoder().decode(output.stderr).slice(-2000)}`,
    );
  }
}

Deno.test("1,000 signed requests at concurrency 50: each run accepted exactly once, all finish, replays all refused", async () => {
  const sql = connect();
  const prefix = tag("load");
  const n = 1000;
  try {
    await createUsers(sql, prefix, n);
    // As createDispatchedRun, set-based: an enabled schedule due in an hour, a dispatched run.
    await sql`
      insert into auto_sync.schedules (user_id, every, enabled, next_run_at)
      select id, '1 hour', true, now() + interval '1 hour' from auth.users where email like ${
      prefix + "%"
    }`;
    await sql`
      insert into auto_sync.runs (user_id, trigger, status, scheduled_for, dispatched_at)
      select id, 'schedule', 'dispatched', now(), now() from auth.users where email like ${
      prefix + "%"
    }`;
    // Signed by the database, as dispatch() signs: body = jsonb::text, one query for all.
    const rows = await sql<SignedRequest[]>`
      with k as (select auto_sync.signing_keys() as keys, floor(extract(epoch from now()))::bigint as ts),
      c as (
        select r.id, k.ts, k.keys,
               auto_sync.request_claims(r.user_id, r.id, k.ts, 300) as claims
          from auto_sync.runs r join auth.users u on u.id = r.user_id, k
         where u.email like ${prefix + "%"})
      select c.id::text as id, c.ts::text as timestamp, convert_to(c.claims::text, 'UTF8') as body,
             auto_sync.sign(c.id::text, c.ts, c.claims::text, c.keys) as signature
        from c`;
    assert.equal(rows.length, n);

    const started = performance.now();
    const statuses = await mapLimit(rows, 50, async (row) => {
      const response = await send(row);
      const body = await response.json();
      if (response.status === 202) assert.deepEqual(body, { run_id: row.id });
      return response.status;
    });
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `1,000 signed requests, concurrency 50: ${seconds.toFixed(2)} s, ${
        (n / seconds).toFixed(0)
      } req/s`,
    );
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(Object.groupBy(statuses, String)).map(([k, v]) => [k, v!.length]),
      ),
      { "202": n },
    );

    // Every run reaches a final status (no mailbox: skipped), accepted once.
    const finals = await waitFor(async () => {
      const [row] = await sql`
        select count(*) filter (where r.finished_at is not null)::int as finished,
               count(*) filter (where r.status = 'skipped' and r.accepted_at is not null)::int as skipped
          from auto_sync.runs r join auth.users u on u.id = r.user_id where u.email like ${
        prefix + "%"
      }`;
      return row.finished === n ? row : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    assert.equal(finals.skipped, n);
    const [ledger] = await sql`
      select count(*)::int as ids, count(distinct l.request_id)::int as distinct_ids
        from auto_sync.used_request_ids l
       where l.request_id in (select r.id::text from auto_sync.runs r join auth.users u on u.id = r.user_id
                               where u.email like ${prefix + "%"})`;
    assert.deepEqual({ ...ledger }, { ids: n, distinct_ids: n });

    // The same 1,000 again: all 409, nothing changed.
    const snapshot = async () =>
      await sql`
        select r.id, r.status, r.accepted_at, r.started_at, r.finished_at, r.error
          from auto_sync.runs r join auth.users u on u.id = r.user_id
         where u.email like ${prefix + "%"} order by r.id`;
    const before = await snapshot();
    const replays = await mapLimit(rows, 50, async (row) => {
      const response = await send(row);
      await response.body?.cancel();
      return response.status;
    });
    assert.equal(replays.filter((status) => status === 409).length, n);
    assert.deepEqual(await snapshot(), before);
  } finally {
    await cleanupUsers(sql, prefix);
    await sql.end();
  }
});

/**
 * A connection whose commits are durable at once. The stack's throwaway cluster runs
 * with synchronous_commit = off (its postgresql.conf), so an immediate-mode crash
 * would also forget this test's own setup committed in the last few hundred ms;
 * hosted Supabase runs with synchronous_commit = on.
 */
function connectDurable(): postgres.Sql {
  return postgresClient(dbUrl, {
    max: 4,
    onnotice: () => {},
    connection: { synchronous_commit: "on" },
  });
}

/** The tagged users' runs against pg_net's rows (queue or response). */
async function halfDone(sql: postgres.Sql, prefix: string) {
  const [row] = await sql`
    with mine as (
      select r.id, r.net_request_id from auto_sync.runs r join auth.users u on u.id = r.user_id
       where u.email like ${prefix + "%"}
    ), requests as (
      select q.id, (q.headers ->> 'webhook-id') as run_id from net.http_request_queue q
       where (q.headers ->> 'webhook-id') in (select id::text from mine)
    )
    select (select count(*)::int from mine) as runs,
           (select count(*)::int from requests) as queued,
           (select count(*)::int from mine m where m.net_request_id is null
               or (not exists (select 1 from net.http_request_queue q where q.id = m.net_request_id)
                   and not exists (select 1 from net._http_response h where h.id = m.net_request_id)))
             as runs_without_request,
           (select count(*)::int from requests q where not exists (
               select 1 from mine m where m.id::text = q.run_id and m.net_request_id = q.id))
             as requests_without_run`;
  return { ...row } as {
    runs: number;
    queued: number;
    runs_without_request: number;
    requests_without_run: number;
  };
}

/** Users of the group with exactly one run in flight, and that run's request queued. */
async function inFlightWithRequest(sql: postgres.Sql, prefix: string): Promise<number> {
  const [row] = await sql`
    select count(*)::int as n from auth.users u
     where u.email like ${prefix + "%"}
       and (select count(*) from auto_sync.runs r
             where r.user_id = u.id and r.status in ('dispatched', 'accepted', 'running')) = 1
       and exists (select 1 from auto_sync.runs r join net.http_request_queue q on q.id = r.net_request_id
                    where r.user_id = u.id and r.status = 'dispatched'
                      and (q.headers ->> 'webhook-id') = r.id::text)`;
  return row.n;
}

async function dueSchedules(sql: postgres.Sql, prefix: string): Promise<void> {
  await sql`
    insert into auto_sync.schedules (user_id, every, enabled, next_run_at)
    select id, '1 hour', true, now() - interval '1 second' from auth.users where email like ${
    prefix + "%"
  }`;
}

/** dispatch -> pg_net worker -> gateway -> function -> run row, for one fresh user. */
async function assertEndToEnd(): Promise<void> {
  const sql = connect();
  const probe = tag("probe");
  try {
    await createUsers(sql, probe, 1);
    await dueSchedules(sql, probe);
    await sql`select auto_sync.dispatch()`;
    const status = await waitFor(async () => {
      const [row] = await sql`
        select r.status from auto_sync.runs r join auth.users u on u.id = r.user_id
         where u.email like ${probe + "%"} and r.finished_at is not null`;
      return row?.status as string | undefined;
    }, { timeoutMs: 20_000 });
    assert.equal(status, "skipped");
  } finally {
    await cleanupUsers(sql, probe);
    await sql.end();
  }
}

async function restartDuringDispatch(mode: "fast" | "immediate") {
  const prior = tag(`prior-${mode}`);
  const main = tag(`restart-${mode}`);
  const priorCount = 200;
  const n = 5000;
  let sql = connectDurable();
  const [settings] = await sql`select batch_limit, endpoint_url from auto_sync.settings`;
  try {
    // The worker is paused so the queue can be checked row by row; its own outage is the next test.
    await pauseWorker(sql);
    await sql`update auto_sync.settings set batch_limit = 10000`;
    // Requests already committed and waiting in pg_net's queue when the server goes down.
    await createUsers(sql, prior, priorCount);
    await dueSchedules(sql, prior);
    await sql`select auto_sync.dispatch()`;
    assert.deepEqual(await halfDone(sql, prior), {
      runs: priorCount,
      queued: priorCount,
      runs_without_request: 0,
      requests_without_run: 0,
    });
    const [{ max: lastPriorId }] = await sql`
      select max(r.net_request_id)::bigint as max from auto_sync.runs r join auth.users u on u.id = r.user_id
       where u.email like ${prior + "%"}`;

    // The dispatch the restart interrupts.
    await createUsers(sql, main, n);
    await dueSchedules(sql, main);
    const dispatcher = connectDurable();
    const started = performance.now();
    const dispatching = dispatcher`select auto_sync.dispatch() as n`.then(
      (rows) => ({
        ok: true,
        count: rows[0].n as number,
        ms: Math.round(performance.now() - started),
      }),
      (error) => ({ ok: false, error: String(error), ms: Math.round(performance.now() - started) }),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    // PostgreSQL refuses to run as root: as scripts/stack does, run pg_ctl as postgres then,
    // from / and with the state folder's real path (`.stack` may link out of a 0700 clone).
    const pgState = Deno.realPathSync(stateDir);
    const pgCtl = [
      "/usr/lib/postgresql/15/bin/pg_ctl",
      ...[
        "-D",
        `${pgState}/pg`,
        "-m",
        mode,
        "-w",
        "-t",
        "60",
        "-l",
        `${pgState}/pg/server.log`,
        "restart",
      ],
    ];
    const asOwner = Deno.uid() === 0 ? ["runuser", "-u", "postgres", "--", ...pgCtl] : pgCtl;
    const restart = await new Deno.Command(asOwner[0], {
      args: asOwner.slice(1),
      cwd: "/",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(restart.success, new TextDecoder().decode(restart.stderr));
    const outcome = await dispatching;
    await dispatcher.end({ timeout: 1 }).catch(() => {});
    await sql.end({ timeout: 1 }).catch(() => {});
    sql = connectDurable();

    const priorAfter = await halfDone(sql, prior);
    const mainAfter = await halfDone(sql, main);
    console.log(
      `-m ${mode}: interrupted dispatch ${JSON.stringify(outcome)}; ` +
        `queued before the restart ${JSON.stringify(priorAfter)}; interrupted ${
          JSON.stringify(mainAfter)
        }`,
    );
    const [sequence] =
      await sql`select last_value::bigint as last_value, is_called from net.http_request_queue_id_seq`;
    // Never a request without its run.
    assert.equal(priorAfter.requests_without_run, 0);
    assert.equal(mainAfter.requests_without_run, 0);
    assert.equal(priorAfter.runs, priorCount);
    if (mode === "fast") {
      // Clean shutdown: the aborted dispatch left nothing; committed requests survive
      // (unlogged tables are written out at the shutdown checkpoint).
      assert.deepEqual(priorAfter, {
        runs: priorCount,
        queued: priorCount,
        runs_without_request: 0,
        requests_without_run: 0,
      });
      assert.equal(mainAfter.runs_without_request, 0);
      assert.equal(mainAfter.queued, mainAfter.runs);
      // The id sequence went on where it was: no request id is handed out twice.
      assert.ok(
        BigInt(sequence.last_value) >= BigInt(lastPriorId),
        `sequence at ${sequence.last_value}`,
      );
    } else {
      // Crash recovery resets UNLOGGED tables: pg_net's queue (and responses) are empty,
      // so every committed, unsent request is gone while its run row stays `dispatched`.
      assert.equal(priorAfter.queued, 0);
      assert.equal(priorAfter.runs_without_request, priorCount);
      // ...and resets pg_net's unlogged id sequence: the next request gets id 1 again, so a
      // run's net_request_id may later name another request (match responses by time too).
      assert.deepEqual({ ...sequence }, { last_value: "1", is_called: false });
      // The interrupted dispatch rolled back; a pg_cron tick that slipped in before the
      // crash would have lost its requests too, one after it would have queued them.
      assert.equal(mainAfter.runs_without_request + mainAfter.queued, mainAfter.runs);
      // The documented handling: past settings.ack_deadline reconcile_runs() calls them
      // lost and schedules a retry. The clock is moved by ageing the run rows.
      await sql`
        update auto_sync.runs r set created_at = r.created_at - interval '6 minutes',
                                    dispatched_at = r.dispatched_at - interval '6 minutes'
          from auth.users u
         where u.id = r.user_id and (u.email like ${prior + "%"} or u.email like ${main + "%"})
           and r.status = 'dispatched'`;
      await sql`select auto_sync.reconcile_runs()`;
      const [lost] = await sql`
        select count(*) filter (where r.status = 'lost' and r.error like 'No acknowledgement%')::int as lost,
               count(*)::int as runs,
               count(*) filter (where s.consecutive_failures = 1
                                  and s.next_run_at between now() + interval '50 seconds'
                                                        and now() + interval '2 minutes')::int as retrying
          from auto_sync.runs r join auth.users u on u.id = r.user_id
          join auto_sync.schedules s on s.user_id = r.user_id
         where u.email like ${prior + "%"} or u.email like ${main + "%"}`;
      assert.equal(lost.lost, lost.runs);
      assert.equal(lost.retrying, lost.runs);
    }

    // A second dispatch completes normally: every user has one run in flight with its request.
    await sql`
      update auto_sync.schedules s set next_run_at = now() - interval '1 second'
        from auth.users u
       where u.id = s.user_id and (u.email like ${prior + "%"} or u.email like ${main + "%"})`;
    const secondStarted = performance.now();
    const [second] = await sql`select auto_sync.dispatch() as n`;
    console.log(
      `second dispatch: ${second.n} runs in ${Math.round(performance.now() - secondStarted)} ms`,
    );
    assert.equal(await inFlightWithRequest(sql, prior), priorCount);
    assert.equal(await inFlightWithRequest(sql, main), n);
    assert.equal((await halfDone(sql, main)).requests_without_run, 0);
  } finally {
    await sql`update auto_sync.settings set batch_limit = ${settings.batch_limit}, endpoint_url = ${settings.endpoint_url}`;
    await cleanupUsers(sql, prior);
    await cleanupUsers(sql, main);
    await resumeWorker(sql);
    await sql.end();
    await ensureStack();
  }
  // The stack survived the restart: the worker and the functions reconnect.
  await assertEndToEnd();
}

Deno.test("Postgres restarted (-m fast) during a dispatch: no run without its request, no request without its run", async () => {
  await restartDuringDispatch("fast");
});

Deno.test("Postgres crashed (-m immediate) during a dispatch: unlogged pg_net queue emptied, runs reconciled as lost and retried", async () => {
  await restartDuringDispatch("immediate");
});

Deno.test("pg_net worker paused for ten minutes, then resumed: no burst beyond the batch limit, stale requests rejected and retried, every user synced", async () => {
  const sql = connect();
  const prefix = tag("stall");
  const n = 50;
  const limit = 30;
  const [settings] = await sql`select batch_limit, endpoint_url from auto_sync.settings`;
  const mine = sql`select r.id, r.user_id, r.status, r.net_request_id, r.error from auto_sync.runs r
                    join auth.users u on u.id = r.user_id where u.email like ${prefix + "%"}`;
  try {
    await pauseWorker(sql);
    await createUsers(sql, prefix, n);
    await dueSchedules(sql, prefix);
    await sql`update auto_sync.settings set batch_limit = ${limit}`;

    // Ticks while the worker is paused: each bounded by the batch limit, and a user whose
    // run is still in flight is never dispatched again (the pg_cron tick may take part too).
    const counts: number[] = [];
    for (let tick = 0; tick < 4; tick++) {
      const [row] = await sql`select auto_sync.dispatch() as n`;
      counts.push(row.n);
    }
    console.log(`dispatch() with the worker paused, batch limit ${limit}: ${counts.join(", ")}`);
    assert.ok(counts.every((count) => count <= limit), `a tick dispatched more than ${limit}`);
    const [perUser] = await sql`
      select count(distinct r.user_id)::int as users, count(*)::int as runs,
             count(*) filter (where r.status = 'dispatched')::int as dispatched
        from auto_sync.runs r join auth.users u on u.id = r.user_id where u.email like ${
      prefix + "%"
    }`;
    assert.deepEqual({ ...perUser }, { users: n, runs: n, dispatched: n });
    assert.deepEqual(await halfDone(sql, prefix), {
      runs: n,
      queued: n,
      runs_without_request: 0,
      requests_without_run: 0,
    });

    // Ten minutes pass: the queued requests now carry what dispatch() would have signed
    // ten minutes ago (timestamp, iat and exp 600 s back, re-signed with the Vault keys).
    await sql`
      with k as (select auto_sync.signing_keys() as keys, floor(extract(epoch from now()))::bigint - 600 as ts),
      c as (
        select q.id, q.headers, k.ts, k.keys,
               convert_from(q.body, 'UTF8')::jsonb || jsonb_build_object('iat', k.ts, 'exp', k.ts + 300) as claims
          from net.http_request_queue q, k
         where (q.headers ->> 'webhook-id') in (
               select r.id::text from auto_sync.runs r join auth.users u on u.id = r.user_id
                where u.email like ${prefix + "%"}))
      update net.http_request_queue q
         set body = convert_to(c.claims::text, 'UTF8'),
             headers = c.headers || jsonb_build_object(
               'webhook-timestamp', c.ts::text,
               'webhook-signature', auto_sync.sign(c.headers ->> 'webhook-id', c.ts, c.claims::text, c.keys))
        from c where q.id = c.id`;

    // Resume the worker: it sends the backlog, the function refuses every stale request.
    await resumeWorker(sql);
    const answered = await waitFor(async () => {
      const rows = await sql`
        select h.status_code from (${mine}) m join net._http_response h on h.id = m.net_request_id`;
      return rows.length === n ? rows : undefined;
    }, { timeoutMs: 20_000 });
    assert.ok(
      answered.every((row) => row.status_code === 401),
      JSON.stringify(answered.slice(0, 3)),
    );

    await sql`select auto_sync.reconcile_runs()`;
    const runs = await mine;
    assert.ok(
      runs.every((run) =>
        run.status === "rejected" && run.error === "Function refused the request: HTTP 401"
      ),
      JSON.stringify(runs.slice(0, 3)),
    );
    const [retry] = await sql`
      select count(*) filter (where s.consecutive_failures = 1 and s.enabled
                                and s.next_run_at between now() + interval '50 seconds'
                                                      and now() + interval '2 minutes')::int as retrying
        from auto_sync.schedules s join auth.users u on u.id = s.user_id where u.email like ${
      prefix + "%"
    }`;
    assert.equal(retry.retrying, n);

    // The retry comes due (clock moved by bringing next_run_at forward): every user syncs.
    await sql`update auto_sync.settings set batch_limit = ${settings.batch_limit}`;
    await sql`
      update auto_sync.schedules s set next_run_at = now() - interval '1 second'
        from auth.users u where u.id = s.user_id and u.email like ${prefix + "%"}`;
    await sql`select auto_sync.dispatch()`;
    await waitFor(async () => {
      const [row] = await sql`
        select count(*)::int as n from auto_sync.schedules s join auth.users u on u.id = s.user_id
         where u.email like ${
        prefix + "%"
      } and s.last_outcome = 'skipped' and s.consecutive_failures = 0`;
      return row.n === n ? true : undefined;
    }, { timeoutMs: 20_000 });
    const [final] = await sql`
      select count(distinct r.user_id) filter (where r.status = 'skipped')::int as synced,
             count(*) filter (where r.status = 'rejected')::int as rejected,
             count(*)::int as runs
        from auto_sync.runs r join auth.users u on u.id = r.user_id where u.email like ${
      prefix + "%"
    }`;
    assert.deepEqual({ ...final }, { synced: n, rejected: n, runs: 2 * n });
  } finally {
    await sql`update auto_sync.settings set batch_limit = ${settings.batch_limit}, endpoint_url = ${settings.endpoint_url}`;
    await cleanupUsers(sql, prefix);
    await resumeWorker(sql);
    await sql.end();
  }
});

/**
 * The pids of the `deno serve` processes behind one function of THIS stack: children of
 * this stack's gateway (its pid file) serving this clone's entry point. One function
 * may have more than one instance (a retired one finishing its work beside the one
 * taking requests: local-stack/isolate_limits.ts). The process table is shared by every
 * stack on the machine (network namespaces do not separate it), so matching on the
 * command line alone can find another stack's function.
 */
async function functionPids(name: string): Promise<number[]> {
  const gatewayPid = Number(Deno.readTextFileSync(`${stateDir}/gateway.pid`).trim());
  const entry = `${repo}supabase/functions/${name}/index.ts`;
  const output = await new Deno.Command("ps", {
    args: ["-eo", "pid=,ppid=,args="],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(output.stdout).split("\n")
    .map((row) => row.trim().split(/\s+/))
    .filter(([, ppid, ...args]) =>
      Number(ppid) === gatewayPid && args.includes("serve") && args.includes(entry)
    )
    .map(([pid]) => Number(pid));
}

async function reloadFunctions(): Promise<void> {
  const output = await new Deno.Command(`${repo}scripts/stack`, {
    args: ["reload"],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!output.success) {
    throw new Error(`Cannot reload the functions: ${new TextDecoder().decode(output.stderr)}`);
  }
}

Deno.test("the function process killed mid-import: the run ends lost, is retried, and imports nothing twice", async () => {
  const sql = connect();
  const holder = connect();
  const prefix = tag("kill");
  const total = 60;
  let killed = false;
  let hold: ImportHold | undefined;
  try {
    await createUsers(sql, prefix, 1);
    const [{ id: userId }] = await sql`select id from auth.users where email like ${prefix + "%"}`;
    const imapUser = await createImapUser();
    await appendMessages(imapUser, "INBOX", Array.from({ length: total }, () => message()));
    const mailboxId = await addMailbox(sql, userId, imapUser);

    // The import's second batch waits: the first batch (and its folder state) is
    // committed, the run is mid-import.
    hold = await holdImportAfterFirstBatch(sql, holder, mailboxId);
    await dueSchedules(sql, prefix);

    await sql`select auto_sync.dispatch()`;
    const [firstRun] = await waitFor(async () => {
      const rows = await sql`
        select r.id, r.status, a.pid as backend from auto_sync.runs r, pg_stat_activity a
         where r.user_id = ${userId} and r.status = 'running'
           and a.wait_event_type = 'Lock' and a.wait_event = 'advisory'`;
      return rows.length ? rows : undefined;
    }, { timeoutMs: 20_000 });
    const [{ n: committedBeforeKill }] =
      await sql`select count(*)::int as n from public.emails where mailbox_id = ${mailboxId}`;

    // Kill the function's processes mid-run (SIGKILL: no cleanup, no finish_run).
    const pids = await functionPids("cron-auto-sync");
    assert.ok(pids.length > 0, "cron-auto-sync process not found");
    for (const pid of pids) Deno.kill(pid, "SIGKILL");
    killed = true;
    await hold.release();
    // The killed process's blocked statement may still finish (Postgres notices a dead
    // client only when it next writes to it): batch and folder state commit together or not.
    // Wait for the dead process's backend to go away before counting.
    await waitFor(async () => {
      const rows = await sql`select 1 from pg_stat_activity where pid = ${firstRun.backend}`;
      return rows.length ? undefined : true;
    }, { timeoutMs: 10_000 });
    const [afterKill] = await sql`
      select (select count(*)::int from public.emails where mailbox_id = ${mailboxId}) as emails,
             (select last_uid from auto_sync.folder_state where mailbox_id = ${mailboxId} and folder = 'INBOX') as last_uid,
             (select status from auto_sync.runs where id = ${firstRun.id}) as status`;
    console.log(
      `killed mid-run: ${committedBeforeKill} emails committed before the kill, ${
        JSON.stringify(afterKill)
      } after`,
    );
    assert.equal(afterKill.status, "running");
    assert.equal(
      Number(afterKill.last_uid),
      afterKill.emails,
      "the folder state covers exactly the stored mail",
    );
    assert.ok(afterKill.emails > 0 && afterKill.emails < total);

    // The clock moves past settings.in_flight_timeout: reconcile calls the run lost and schedules a retry.
    await sql`update auto_sync.runs set created_at = created_at - interval '16 minutes' where id = ${firstRun.id}`;
    await sql`select auto_sync.reconcile_runs()`;
    const [lost] = await sql`
      select r.status, r.error, s.consecutive_failures, s.next_run_at > now() as retry_later
        from auto_sync.runs r join auto_sync.schedules s on s.user_id = r.user_id where r.id = ${firstRun.id}`;
    assert.deepEqual({ ...lost }, {
      status: "lost",
      error: "Import did not finish within 15 minutes",
      consecutive_failures: 1,
      retry_later: true,
    });

    // The retry: functions restarted, the dead run's mailbox lease expired (clock moved), schedule due.
    await reloadFunctions();
    killed = false;
    await sql`update public.mailboxes set import_lease_until = now() - interval '1 second' where id = ${mailboxId}`;
    await sql`update auto_sync.schedules set next_run_at = now() - interval '1 second' where user_id = ${userId}`;
    await sql`select auto_sync.dispatch()`;
    const retry = await waitFor(async () => {
      const [row] = await sql`
        select id, status, details from auto_sync.runs
         where user_id = ${userId} and id <> ${firstRun.id} and finished_at is not null`;
      return row;
    }, { timeoutMs: 30_000 });
    console.log(`retry: ${JSON.stringify(retry)}`);
    assert.equal(retry.status, "succeeded", JSON.stringify(retry));
    assert.equal(retry.details.inserted, total - afterKill.emails);
    const [mail] = await sql`
      select count(*)::int as emails, count(distinct message_id)::int as distinct_ids,
             count(distinct (uid_validity, uid))::int as distinct_uids
        from public.emails where mailbox_id = ${mailboxId}`;
    assert.deepEqual({ ...mail }, { emails: total, distinct_ids: total, distinct_uids: total });
    const [schedule] =
      await sql`select consecutive_failures, last_outcome from auto_sync.schedules where user_id = ${userId}`;
    assert.deepEqual({ ...schedule }, { consecutive_failures: 0, last_outcome: "succeeded" });
  } finally {
    await hold?.remove();
    await holder.end();
    await cleanupUsers(sql, prefix);
    await sql.end();
    if (killed || (await functionPids("cron-auto-sync")).length === 0) await reloadFunctions();
  }
});
