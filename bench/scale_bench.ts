/**
 * Benchmark 5: how the one-job design scales, set beside one pg_cron job per user.
 *
 *   1. dispatch() over 1,000 / 10,000 / 100,000 schedules with 10 % due, each size in
 *      ONE transaction that is rolled back (users + schedules created set-based); each
 *      tick between `savepoint` and `rollback to savepoint`, 3 rounds, with
 *      settings.batch_limit 10,000 (all due go in one tick) and the default 500.
 *      Reported: wall time per tick, µs per dispatched schedule, ratio 100k/1k
 *      (goal <= 1.5×, a figure, not a pass/fail); an idle tick at 100k (nothing due)
 *      and EXPLAIN of the due query.
 *   2. The original design's one `cron.schedule` per user: time to create and to
 *      remove 1,000 jobs, and what pg_cron does when the 1,000 (`select pg_sleep(0.05)`)
 *      fall due at the same minute boundary: runs, failures, start spread, from
 *      cron.job_run_details. Jobs are named `bench-peruser-<uuid>-<n>`; all are
 *      unscheduled after that one boundary, and in a `finally` (also on Ctrl-C).
 *   3. pg_net's delivery rate: the real pg_net worker (one background worker, default
 *      pg_net.batch_size 200; ~200 requests/s here), 2,000 committed net.http_post() to
 *      a local Deno.serve answering 202, timed until net._http_response has them all
 *      (~10 s); the rows are deleted afterwards.
 * Parts 1 and 3 measure only their own schedules and requests: other schedules due
 * in the database are set aside inside part 1's rolled-back transactions
 * (bench/support/isolated_schedules.ts), and part 3 counts responses by its own ids.
 *
 *   deno run --allow-net --allow-env bench/scale_bench.ts [--only dispatch|delivery|peruser]
 */
import postgres from "postgres";
import { parseArgs } from "node:util";
import { dbUrl, testPorts } from "../local-stack/urls.ts";
import {
  createBenchSchedules,
  describeSetAside,
  setAsideOtherDueSchedules,
} from "./support/isolated_schedules.ts";
import { fmt, median, ratio, spread } from "./support/figures.ts";
import * as report from "./support/report.ts";
import { sizes } from "./support/sizes.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: { only: { type: "string" }, smoke: { type: "boolean" } }, // --smoke: sizes.ts
});
const runs = (part: string) => !args.only || args.only === part;

const {
  sizes: SIZES,
  rounds: ROUNDS,
  perUserJobs: PER_USER_JOBS,
  deliveryRequests: DELIVERY_REQUESTS,
} = sizes.scale;
const DUE_FRACTION = 0.1;
const FLAT_GOAL = report.atMost(1.5); // µs per dispatched schedule, largest size over smallest
const DELIVERY_DEADLINE_MS = 60_000;

type Db = postgres.ReservedSql;
type Sql = postgres.Sql;

const ms = (start: number) => performance.now() - start;
/** "100k" (or "400" in a smoke run). */
const sizeLabel = (r: { size: number }) => r.size >= 1000 ? `${fmt(r.size / 1000)}k` : fmt(r.size);

/** A query that outlives `limitMs` fails instead of hanging (e.g. the shared stack restarted under us). */
async function within<T>(promise: Promise<T>, limitMs: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer within ${limitMs} ms (stack restarted?)`)),
      limitMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------
// 1. dispatch() at scale
// ---------------------------------------------------------------------------

interface SizeResult {
  size: number;
  due: number;
  setupMs: number;
  /** batch_limit -> times of each round and rows dispatched. */
  ticks: Map<number, { times: number[]; sent: number }>;
  idleTimes?: number[];
  plan?: string[];
}

async function createSchedules(
  db: Db,
  size: number,
  batchLimit: number,
  dueFraction = DUE_FRACTION,
): Promise<number> {
  const due = Math.round(size * dueFraction);
  const setAside = await setAsideOtherDueSchedules(db);
  if (setAside > 0) console.log(`${fmt(size)} schedules: ${describeSetAside(setAside)}`);
  const dueEvery = dueFraction > 0 ? Math.round(1 / dueFraction) : 0;
  await createBenchSchedules(db, { count: size, dueEvery, batchLimit });
  const [{ count }] = await db`
    select count(*)::int from auto_sync.schedules where enabled and next_run_at <= now()`;
  if (count !== due) {
    throw new Error(`expected ${due} due schedules, found ${count}`);
  }
  return count;
}

async function tick(db: Db): Promise<{ time: number; sent: number }> {
  await db`savepoint tick`;
  try {
    const started = performance.now();
    const [{ sent }] = await db`select auto_sync.dispatch() as sent`;
    return { time: ms(started), sent };
  } finally {
    await db`rollback to savepoint tick`;
  }
}

// dispatch()'s own due query: the view holds the one definition of "due".
const DUE_QUERY = `
  select d.user_id, d.next_run_at
    from auto_sync.due_schedules d
   order by d.next_run_at
   limit 500
     for update of d skip locked`;

async function measureSize(db: Db, size: number): Promise<SizeResult> {
  await db`begin`;
  try {
    const started = performance.now();
    const due = await createSchedules(db, size, 10_000);
    const result: SizeResult = { size, due, setupMs: ms(started), ticks: new Map() };
    for (const limit of [10_000, 500]) {
      await db`update auto_sync.settings set batch_limit = ${limit}`;
      const times: number[] = [];
      let sent = 0;
      await tick(db); // warm-up (plan cache, Vault key), not counted
      for (let round = 0; round < ROUNDS; round++) {
        const run = await tick(db);
        times.push(run.time);
        sent = run.sent;
      }
      const expected = Math.min(due, limit);
      if (sent < expected) {
        throw new Error(
          `dispatch() sent ${sent} at ${size} (batch_limit ${limit}), expected ${expected}`,
        );
      }
      result.ticks.set(limit, { times, sent });
    }
    if (size === SIZES.at(-1)) {
      await db`savepoint plan`;
      const duePlan = await db.unsafe(`explain (analyze, costs off, timing off) ${DUE_QUERY}`);
      await db`rollback to savepoint plan`;
      result.plan = [
        "-- 10 % due (10,000 of 100,000), limit 500:",
        ...duePlan.map((row) => row["QUERY PLAN"] as string),
      ];
    }
    return result;
  } finally {
    await db`rollback`.catch(() => {});
  }
}

/** A tick at 100,000 schedules none of which is due (a fresh transaction: no dead index entries). */
async function measureIdle(db: Db, size: number): Promise<{ times: number[]; plan: string[] }> {
  await db`begin`;
  try {
    await createSchedules(db, size, 10_000, 0);
    const times: number[] = [];
    for (let round = 0; round < ROUNDS + 1; round++) {
      const run = await tick(db);
      if (run.sent !== 0) throw new Error(`idle tick sent ${run.sent}`);
      if (round > 0) times.push(run.time);
    }
    await db`savepoint plan`;
    const plan = await db.unsafe(`explain (analyze, costs off, timing off) ${DUE_QUERY}`);
    await db`rollback to savepoint plan`;
    return {
      times,
      plan: ["-- nothing due (0 of 100,000):", ...plan.map((row) => row["QUERY PLAN"] as string)],
    };
  } finally {
    await db`rollback`.catch(() => {});
  }
}

async function benchDispatch(db: Db): Promise<SizeResult[]> {
  report.section(
    `1. dispatch() over ${SIZES.map((n) => fmt(n)).join(" / ")} schedules, 10 % due (rolled back)`,
  );
  const results: SizeResult[] = [];
  for (const size of SIZES) results.push(await measureSize(db, size));
  const idleRun = await measureIdle(db, SIZES.at(-1)!);
  results.at(-1)!.idleTimes = idleRun.times;
  results.at(-1)!.plan!.push(...idleRun.plan);
  const perSchedule = (time: number, sent: number) => (time * 1000) / sent;
  const rows: string[][] = [[
    "schedules",
    "due",
    "setup ms",
    "batch_limit",
    "dispatched",
    "median ms/tick",
    "rounds min–max",
    "µs/dispatched",
  ]];
  for (const r of results) {
    for (const [limit, { times, sent }] of r.ticks) {
      rows.push([
        fmt(r.size),
        fmt(r.due),
        fmt(r.setupMs),
        fmt(limit),
        fmt(sent),
        fmt(median(times), 1),
        spread(times, 1),
        fmt(perSchedule(median(times), sent), 1),
      ]);
    }
  }
  report.table(rows);
  const cost = (r: SizeResult, limit: number) => {
    const t = r.ticks.get(limit)!;
    return perSchedule(median(t.times), t.sent);
  };
  const [small, , large] = results;
  const flat = cost(large, 10_000) / cost(small, 10_000);
  const flat500 = cost(large, 500) / cost(results[1], 500);
  console.log(
    `per-dispatched-schedule cost ${sizeLabel(large)}/${sizeLabel(small)} (batch_limit 10,000): ${
      ratio(flat)
    } (${report.goal(FLAT_GOAL, flat)}); batch_limit 500, ${sizeLabel(large)}/${
      sizeLabel(results[1])
    } (both send 500): ${ratio(flat500)}`,
  );
  const idle = large.idleTimes!;
  console.log(
    `idle tick at 100,000 schedules (nothing due): ${fmt(median(idle), 2)} ms (rounds ${
      spread(idle, 2)
    })`,
  );
  console.log("EXPLAIN ANALYZE of dispatch()'s due query at 100,000:");
  for (const line of large.plan!) console.log(`  ${line}`);
  report.summary(
    `scale: dispatch per tick ${
      results.map((r) =>
        `${sizeLabel(r)}→${fmt(r.ticks.get(10_000)!.sent)} sent ${
          fmt(median(r.ticks.get(10_000)!.times))
        } ms (${fmt(cost(r, 10_000), 1)} µs each)`
      ).join(", ")
    }; ${sizeLabel(large)}/${sizeLabel(small)} per schedule ${ratio(flat)} (${
      report.goal(FLAT_GOAL, flat)
    }); idle tick at ${sizeLabel(large)} ${fmt(median(idle), 1)} ms`,
  );
  return results;
}

// ---------------------------------------------------------------------------
// 2. One pg_cron job per user (the original design)
// ---------------------------------------------------------------------------

const prefix = `bench-peruser-${crypto.randomUUID()}-`;
let perUserCleanup: (() => Promise<void>) | null = null;

async function unscheduleAll(sql: Sql): Promise<number> {
  const [{ removed }] = await sql`
    select count(cron.unschedule(jobid))::int as removed
      from cron.job where starts_with(jobname, ${prefix})`;
  return removed;
}

async function benchPerUser(sql: Sql): Promise<void> {
  report.section(`2. one pg_cron job per user: ${fmt(PER_USER_JOBS)} jobs (prefix ${prefix})`);
  const [settings] = await sql`
    select current_setting('cron.max_running_jobs') as max_running_jobs,
           current_setting('max_worker_processes') as max_worker_processes,
           current_setting('cron.use_background_workers') as use_background_workers,
           (select extversion from pg_extension where extname = 'pg_cron') as version`;
  console.log(
    `pg_cron ${settings.version}; cron.max_running_jobs = ${settings.max_running_jobs}, ` +
      `cron.use_background_workers = ${settings.use_background_workers}, max_worker_processes = ${settings.max_worker_processes}`,
  );
  let jobIds: number[] = [];
  perUserCleanup = async () => {
    await unscheduleAll(sql);
    if (jobIds.length) await sql`delete from cron.job_run_details where jobid = any(${jobIds})`;
  };
  try {
    // Setup time: 1,000 cron.schedule() calls, one statement each (as per-user sign-ups would).
    // Scheduled for 1 January 00:00, so nothing runs while we time this.
    let started = performance.now();
    for (let n = 0; n < PER_USER_JOBS; n++) {
      await sql`select cron.schedule(${`${prefix}${n}`}, '0 0 1 1 *', 'select pg_sleep(0.05)')`;
    }
    const scheduleMs = ms(started);
    started = performance.now();
    const removedFirst = await unscheduleAll(sql);
    const unscheduleMs = ms(started);
    console.log(
      `setup: ${fmt(PER_USER_JOBS)} cron.schedule() calls ${fmt(scheduleMs)} ms (${
        fmt((scheduleMs * 1000) / PER_USER_JOBS)
      } µs each); unschedule all ${fmt(removedFirst)} in one statement ${fmt(unscheduleMs)} ms`,
    );

    // The burst: the same 1,000 jobs, every minute, created in one committed statement
    // at least 10 s before a minute boundary, removed after that one boundary.
    let now = new Date();
    if (60 - now.getUTCSeconds() < 10) {
      await new Promise((resolve) => setTimeout(resolve, (61 - now.getUTCSeconds()) * 1000));
      now = new Date();
    }
    const boundary = new Date(now);
    boundary.setUTCSeconds(60, 0);
    const rows = await sql`
      select cron.schedule(${prefix} || n, '* * * * *', 'select pg_sleep(0.05)') as jobid
        from generate_series(0, ${PER_USER_JOBS - 1}) n`;
    jobIds = rows.map((row) => Number(row.jobid));
    console.log(
      `burst: ${
        fmt(jobIds.length)
      } jobs '* * * * *' running 'select pg_sleep(0.05)', due at ${boundary.toISOString()}`,
    );
    const deadline = boundary.getTime() + 50_000;
    const count = () =>
      sql`select count(*)::int as rows,
                 count(*) filter (where end_time is not null)::int as ended
            from cron.job_run_details where jobid = any(${jobIds})`;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if (Date.now() < boundary.getTime()) continue;
      const [{ ended }] = await within(count(), 5_000, "polling cron.job_run_details");
      if (ended >= jobIds.length) break;
    }
    const removed = await unscheduleAll(sql);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // let running ones finish
    const [stats] = await sql`
      select count(*)::int as rows,
             count(*) filter (where status = 'succeeded')::int as succeeded,
             count(*) filter (where status = 'failed')::int as failed,
             count(*) filter (where status not in ('succeeded', 'failed'))::int as unfinished,
             extract(epoch from min(start_time) - ${boundary})::float8 as first_start,
             extract(epoch from max(start_time) - ${boundary})::float8 as last_start,
             extract(epoch from max(end_time) - ${boundary})::float8 as last_end,
             extract(epoch from percentile_cont(0.5) within group (order by start_time - ${boundary}))::float8
               as median_start,
             (select string_agg(distinct left(return_message, 80), ' | ')
                from cron.job_run_details where jobid = any(${jobIds}) and status = 'failed') as errors
        from cron.job_run_details where jobid = any(${jobIds})`;
    const concurrency = await sql`
      select max(c)::int as peak from (
        select (select count(*) from cron.job_run_details d2
                 where d2.jobid = any(${jobIds}) and d2.start_time <= d.start_time
                   and coalesce(d2.end_time, 'infinity') > d.start_time) as c
          from cron.job_run_details d where d.jobid = any(${jobIds})) x`;
    const [ours] = await sql`
      select extract(epoch from d.start_time - ${boundary})::float8 as start,
             extract(epoch from d.end_time - d.start_time)::float8 as took, d.status
        from cron.job_run_details d join cron.job j using (jobid)
       where j.jobname = 'auto-sync-dispatch' and d.start_time >= ${boundary}
         and d.start_time < ${boundary} + interval '1 minute'
       order by d.start_time limit 1`;
    const s = (v: number | null) => v === null ? "n/a" : `${fmt(v, 2)} s`;
    report.table([
      ["per-user jobs due at one boundary", "value"],
      ["jobs scheduled", fmt(jobIds.length)],
      ["runs recorded (cron.job_run_details)", fmt(stats.rows)],
      ["  succeeded", fmt(stats.succeeded)],
      ["  failed", fmt(stats.failed)],
      ["  not finished when unscheduled", fmt(stats.unfinished)],
      ["  skipped (no run recorded)", fmt(jobIds.length - stats.rows)],
      ["first start after the boundary", s(stats.first_start)],
      ["median start after the boundary", s(stats.median_start)],
      ["last start after the boundary", s(stats.last_start)],
      ["last end after the boundary", s(stats.last_end)],
      ["peak runs at once (from start/end times)", fmt(concurrency[0]?.peak ?? 0)],
      [
        "auto-sync-dispatch that minute: start after boundary",
        ours ? `${s(ours.start)} (${ours.status}, took ${s(ours.took)})` : "no run recorded",
      ],
    ]);
    if (stats.errors) console.log(`failure messages: ${stats.errors}`);
    console.log(`unscheduled ${fmt(removed)} jobs after the boundary`);
    report.summary(
      `per-user pg_cron: ${fmt(PER_USER_JOBS)} cron.schedule() ${fmt(scheduleMs)} ms; ` +
        `burst of ${
          fmt(jobIds.length)
        } at one minute (max_running_jobs ${settings.max_running_jobs}): ` +
        `${fmt(stats.succeeded)} ok, ${fmt(stats.failed)} failed, ${
          fmt(jobIds.length - stats.rows)
        } not run; starts spread ${s(stats.first_start)}–${s(stats.last_start)} after the minute`,
    );
  } finally {
    await perUserCleanup().catch((error) => console.error(`cleanup: ${error.message}`));
    perUserCleanup = null;
    const [{ left }] = await sql`
      select count(*)::int as left from cron.job where starts_with(jobname, ${prefix})`;
    const [{ kept }] = await sql`
      select count(*)::int as kept from cron.job
       where jobname in ('auto-sync-dispatch', 'auto-sync-maintenance')`;
    console.log(
      `cleanup: ${left} jobs with prefix ${prefix} remain; the stack's own jobs present: ${kept}/2`,
    );
    // Jobs left behind would run every minute on the shared stack: that error wins over any other.
    // deno-lint-ignore no-unsafe-finally
    if (left !== 0) throw new Error(`${left} per-user bench jobs remain: unschedule ${prefix}*`);
  }
}

// ---------------------------------------------------------------------------
// 3. pg_net's delivery rate (the real worker, default pg_net.batch_size)
// ---------------------------------------------------------------------------

interface Sink {
  server: Deno.HttpServer;
  url: string;
  count: () => number;
  /** performance.now() of the first and the last request received. */
  first: () => number;
  last: () => number;
}

function startSink(): Sink {
  let received = 0, first = NaN, last = NaN;
  const handler = async (request: Request) => {
    await request.arrayBuffer();
    last = performance.now();
    if (received++ === 0) first = last;
    return new Response('{"accepted":true}', {
      status: 202,
      headers: { "content-type": "application/json" },
    });
  };
  for (const port of [...testPorts.scaleBenchFunctions, 0]) {
    try {
      const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, handler);
      return {
        server,
        url: `http://127.0.0.1:${server.addr.port}/`,
        count: () => received,
        first: () => first,
        last: () => last,
      };
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    }
  }
  throw new Error("no free port");
}

async function benchDelivery(sql: Sql): Promise<number> {
  report.section(
    `3. pg_net delivery rate (real worker): ${
      fmt(DELIVERY_REQUESTS)
    } committed requests to a local 202`,
  );
  const sink = startSink();
  let ids: { min: number; max: number } | null = null;
  try {
    const started = performance.now();
    const [row] = await sql`
      select min(id)::int8 as min, max(id)::int8 as max from (
        select net.http_post(url := ${sink.url},
                 body := jsonb_build_object('n', n, 'bench', 'scale'),
                 timeout_milliseconds := 5000) as id
          from generate_series(1, ${DELIVERY_REQUESTS}) n) q`;
    const queuedMs = ms(started);
    const committed = performance.now();
    ids = { min: Number(row.min), max: Number(row.max) };
    let done = 0, ok = 0;
    // ~10 s at the real worker's ~200/s; a busy machine gets six times that.
    const deadline = Date.now() + DELIVERY_DEADLINE_MS;
    while (Date.now() < deadline) {
      const [r] = await within(
        sql`
        select count(*)::int as done, count(*) filter (where status_code = 202)::int as ok
          from net._http_response where id between ${ids.min} and ${ids.max}`,
        5_000,
        "polling net._http_response",
      );
      done = r.done;
      ok = r.ok;
      if (done >= DELIVERY_REQUESTS) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const totalMs = ms(started);
    const [span] = await sql`
      select extract(epoch from max(created) - min(created))::float8 * 1000 as ms
        from net._http_response where id between ${ids.min} and ${ids.max}`;
    const rate = (DELIVERY_REQUESTS * 1000) / (totalMs - queuedMs);
    report.table([
      ["pg_net delivery", "value"],
      [
        "requests queued (one committed statement)",
        `${fmt(DELIVERY_REQUESTS)} in ${fmt(queuedMs)} ms`,
      ],
      ["responses recorded", `${fmt(done)} (${fmt(ok)} × 202; sink saw ${fmt(sink.count())})`],
      ["commit → last response", `${fmt(totalMs - queuedMs)} ms`],
      ["commit → first request at the sink", `${fmt(sink.first() - committed)} ms`],
      ["first → last request at the sink", `${fmt(sink.last() - sink.first())} ms`],
      ["first → last response row (net._http_response.created)", `${fmt(span.ms ?? 0)} ms`],
      ["delivery rate", `${fmt(rate)} requests/s = ${fmt(rate * 60)} per minute`],
    ]);
    if (done < DELIVERY_REQUESTS) {
      throw new Error(
        `only ${done} of ${DELIVERY_REQUESTS} delivered in ${
          DELIVERY_DEADLINE_MS / 1000
        } s (is pg_net's worker running? see .stack/pg/server.log)`,
      );
    }
    report.summary(
      `pg_net worker: ${fmt(rate)} req/s to a local 202 (${fmt(rate * 60)}/min), measured on ${
        fmt(DELIVERY_REQUESTS)
      }`,
    );
    return rate;
  } finally {
    if (ids) {
      await sql`delete from net.http_request_queue where id between ${ids.min} and ${ids.max}`;
      await sql`delete from net._http_response where id between ${ids.min} and ${ids.max}`;
    }
    await sink.server.shutdown();
  }
}

// ---------------------------------------------------------------------------

/** Ticks per minute of the stack's auto-sync-dispatch job: `N seconds` (pg_cron >= 1.5) or a cron line (1). */
async function ticksPerMinute(sql: Sql): Promise<{ schedule: string; ticks: number }> {
  const [job] = await sql`select schedule from cron.job where jobname = 'auto-sync-dispatch'`;
  const schedule = String(job?.schedule ?? "* * * * *");
  const seconds = schedule.match(/^(\d+) seconds?$/)?.[1];
  return { schedule, ticks: seconds ? 60 / Number(seconds) : 1 };
}

function usersPerTick(
  results: SizeResult[],
  rate: number,
  dispatch: { schedule: string; ticks: number },
): void {
  report.section("4. users served per tick");
  const large = results.at(-1)!.ticks.get(10_000)!;
  const tickMs = median(large.times);
  const perMinute = rate * 60;
  console.log(
    `the stack's auto-sync-dispatch runs on '${dispatch.schedule}' (${
      fmt(dispatch.ticks)
    } tick(s) a minute); dispatch() queues ${fmt(large.sent)} requests in ${
      fmt(tickMs)
    } ms; pg_net's worker delivers ~${fmt(perMinute)}/min to a fast endpoint.`,
  );
  console.log(
    `pg_net sends a tick's requests one batch after another: the default 500 leave in ~${
      fmt(500 / rate, 1)
    } s, a full 10,000 in ~${
      fmt(10_000 / rate)
    } s (well inside the claims' 300 s lifetime, which counts from dispatch).`,
  );
  const served = (batchLimit: number) => Math.min(batchLimit * dispatch.ticks, perMinute);
  const limitOf = (batchLimit: number) =>
    batchLimit * dispatch.ticks > perMinute ? "pg_net's delivery" : "batch_limit × ticks";
  for (const batchLimit of [500, 10_000]) {
    console.log(
      `batch_limit ${fmt(batchLimit)}: ~${fmt(served(batchLimit))} users/min = ${
        fmt(served(batchLimit) * 30)
      } users on 30-minute schedules (limit: ${limitOf(batchLimit)})`,
    );
  }
  report.summary(
    `users per minute (dispatch '${dispatch.schedule}'): batch_limit 500 → ~${
      fmt(served(500))
    }/min (${fmt(served(500) * 30)} users at every 30 min); batch_limit 10,000 → ~${
      fmt(served(10_000))
    }/min (limit: ${limitOf(10_000)}; pg_net delivers ${fmt(perMinute)}/min)`,
  );
}

async function main(): Promise<void> {
  const sql = postgres(dbUrl, {
    max: 2,
    onnotice: () => {},
    // Nothing here should take a minute; a stack restarted under us must not hang the run.
    connection: { application_name: "scale bench", statement_timeout: 60_000 },
  });
  const onSignal = async () => {
    await perUserCleanup?.().catch(() => {});
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const started = performance.now();
  try {
    let results: SizeResult[] | null = null;
    let rate: number | null = null;
    if (runs("dispatch")) {
      const db = await sql.reserve();
      try {
        results = await benchDispatch(db);
      } finally {
        db.release();
      }
    }
    if (runs("delivery")) rate = await benchDelivery(sql);
    if (runs("peruser") && PER_USER_JOBS > 0) await benchPerUser(sql);
    else if (runs("peruser")) report.section("2. one pg_cron job per user: skipped (smoke run)");
    if (results && rate) usersPerTick(results, rate, await ticksPerMinute(sql));
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await sql.end();
    console.log(`\ntotal ${fmt(ms(started) / 1000, 1)} s`);
  }
}

await main();
