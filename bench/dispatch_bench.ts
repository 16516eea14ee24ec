/**
 * Benchmark 3: one auto_sync.dispatch() tick over 10,000 due schedules.
 *
 * Everything happens in ONE transaction that is rolled back at the end: the
 * pg_cron job and the pg_net worker share this database, and rows they cannot see
 * (uncommitted) they leave alone; nothing is sent, nothing stays behind.
 *
 *   setup     10,000 auth.users, each with an enabled schedule due now;
 *             auto_sync.settings.batch_limit = 10000 and an endpoint_url
 *   dispatch  select auto_sync.dispatch()  — pick, claim, sign, queue, record
 *   baseline  the same number of net.http_post() calls with the same body shape
 *             (claims jsonb) and the same headers shape minus the signature —
 *             the least any "pg_cron calls a function per user" design must do
 *   breakdown the claims jsonb alone, then + auto_sync.sign() (the HMAC), 10,000 rows;
 *             and one extra dispatch() instrumented by auto_explain (EXPLAIN ANALYZE
 *             of its one big statement): time per part, as shares of that run
 *
 * Each measurement runs between `savepoint` and `rollback to savepoint`, so every
 * one starts from the same 10,000 due schedules; the order alternates by round.
 * Timing is client-side around one statement (one round trip, ~0.1 ms, is noise
 * next to the statement). Report: wall time per tick, µs per schedule, ratio
 * dispatch/baseline (median of per-round ratios). Goal: <= 4×.
 *
 *   deno run --allow-net --allow-env bench/dispatch_bench.ts
 */
import postgres from "postgres";
import { dbUrl, functionsUrl as endpointUrl } from "../local-stack/urls.ts";
import {
  createBenchSchedules,
  describeSetAside,
  setAsideOtherDueSchedules,
} from "./support/isolated_schedules.ts";
import { fmt, median, ratio, spread } from "./support/figures.ts";
import * as report from "./support/report.ts";
import { sizes } from "./support/sizes.ts";

const { schedules: SCHEDULES, rounds: ROUNDS } = sizes.dispatch;
const GOAL = report.atMost(4); // dispatch / baseline

type Db = postgres.ReservedSql;

// The baseline: what dispatch() hands pg_net, minus everything that makes it safe.
const BASELINE = (db: Db) =>
  db`
    select count(*) as sent from (
      select net.http_post(
               url := ${`${endpointUrl}/cron-auto-sync`},
               body := r.body,
               headers := jsonb_build_object(
                 'Content-Type', 'application/json',
                 'webhook-id', r.run_id::text,
                 'webhook-timestamp', r.ts::text),
               timeout_milliseconds := 5000)
        from (select g.run_id, g.ts,
                     auto_sync.request_claims(gen_random_uuid(), g.run_id, g.ts, 300) as body
                from (select gen_random_uuid() as run_id, extract(epoch from now())::bigint as ts
                        from generate_series(1, ${SCHEDULES})) g) r
    ) s`;

const DISPATCH = (db: Db) => db`select auto_sync.dispatch() as sent`;

// Breakdown: building 10k claims bodies as text, then the same plus the HMAC.
const CLAIMS_ONLY = (db: Db) =>
  db`
    select count(length(body::text)) as sent from (
      select auto_sync.request_claims(gen_random_uuid(), g.run_id, g.ts, 300) as body, g.run_id, g.ts
        from (select gen_random_uuid() as run_id, extract(epoch from now())::bigint as ts
                from generate_series(1, ${SCHEDULES})) g) r`;

const CLAIMS_AND_SIGN = (db: Db) =>
  db`
    with keys as materialized (select auto_sync.signing_keys() as keys)
    select count(auto_sync.sign(r.run_id::text, r.ts, r.body::text, keys.keys)) as sent
      from keys, (
        select auto_sync.request_claims(gen_random_uuid(), g.run_id, g.ts, 300) as body, g.run_id, g.ts
          from (select gen_random_uuid() as run_id, extract(epoch from now())::bigint as ts
                  from generate_series(1, ${SCHEDULES})) g) r`;

interface Measurement {
  name: string;
  run: (db: Db) => Promise<postgres.RowList<postgres.Row[]>>;
  /** Whether its net.http_post() rows should be in the queue afterwards. */
  queues: boolean;
  times: number[];
}

/**
 * Times one statement inside a savepoint, checks that it handled SCHEDULES rows
 * (and queued them, when it should), then rolls back to the savepoint.
 */
async function timeInSavepoint(db: Db, measurement: Measurement): Promise<void> {
  await db`savepoint bench`;
  try {
    const [{ count: queuedBefore }] = await db`select count(*)::int from net.http_request_queue`;
    const started = performance.now();
    const [{ sent }] = await measurement.run(db);
    const elapsed = performance.now() - started;
    const [{ count: queuedAfter }] = await db`select count(*)::int from net.http_request_queue`;
    if (Number(sent) !== SCHEDULES) {
      throw new Error(`"${measurement.name}" handled ${sent} rows, expected ${SCHEDULES}`);
    }
    if (measurement.queues && queuedAfter - queuedBefore !== SCHEDULES) {
      throw new Error(
        `"${measurement.name}" queued ${
          queuedAfter - queuedBefore
        } requests, expected ${SCHEDULES}`,
      );
    }
    measurement.times.push(elapsed);
  } finally {
    await db`rollback to savepoint bench`;
  }
}

function reportTimes(measurements: Measurement[]): void {
  const [dispatch, baseline, claims, signed] = measurements;
  const perRound = dispatch.times.map((time, round) => time / baseline.times[round]);
  const dispatchRatio = median(perRound);
  const perSchedule = (ms: number) => fmt((ms * 1000) / SCHEDULES, 1);
  report.table([
    [`statement (${fmt(SCHEDULES)} rows)`, "median ms/tick", "rounds min–max ms", "µs/schedule"],
    ...measurements.map((
      m,
    ) => [m.name, fmt(median(m.times)), spread(m.times), perSchedule(median(m.times))]),
  ]);
  const hmac = median(signed.times) - median(claims.times);
  console.log(
    `HMAC alone (sign − claims): ≈ ${fmt(hmac)} ms per 10k = ${perSchedule(hmac)} µs/schedule`,
  );
  console.log(
    `ratio dispatch/baseline: median of per-round ratios ${ratio(dispatchRatio)} (rounds ${
      spread(perRound, 2)
    }) ` +
      `— ${report.goal(GOAL, dispatchRatio)}`,
  );
  report.summary(
    `dispatch: ${fmt(median(dispatch.times))} ms per 10k tick (${
      perSchedule(median(dispatch.times))
    } µs/schedule), ` +
      `baseline ${fmt(median(baseline.times))} ms (${perSchedule(median(baseline.times))} µs), ` +
      `ratio ${ratio(dispatchRatio)} (${report.goal(GOAL, dispatchRatio)}); ` +
      `HMAC ≈ ${perSchedule(hmac)} µs/schedule`,
  );
}

interface PlanNode {
  "Node Type": string;
  "Subplan Name"?: string;
  "Actual Total Time": number;
  Plans?: PlanNode[];
}

interface ExplainedTrigger {
  "Trigger Name": string;
  "Constraint Name"?: string;
  Relation?: string;
  Time: number;
  Calls: number;
}

interface ExplainedStatement {
  durationMs: number;
  plan: { "Query Text": string; Plan: PlanNode; Triggers?: ExplainedTrigger[] };
}

/** auto_explain's JSON plans, sent to this client as NOTICEs (`duration: x ms  plan: {...}`). */
function parseExplainNotice(message: string): ExplainedStatement | null {
  const match = message.match(/^duration: ([0-9.]+) ms\s+plan:\s*(\{[\s\S]*\})\s*$/);
  return match ? { durationMs: Number(match[1]), plan: JSON.parse(match[2]) } : null;
}

/**
 * Runs dispatch() once more with auto_explain (EXPLAIN ANALYZE of the nested
 * statements, as NOTICEs) and prints what each part of its one big statement
 * took. Instrumentation slows it down, so read the shares, not the milliseconds.
 * Needs the superuser (LOAD); skipped with a note if that fails.
 */
async function explainDispatch(db: Db, notices: string[]): Promise<void> {
  await db`savepoint bench`;
  try {
    await db`load 'auto_explain'`;
    for (
      const setting of [
        "auto_explain.log_min_duration = 20",
        "auto_explain.log_analyze = on",
        "auto_explain.log_nested_statements = on",
        "auto_explain.log_triggers = on",
        "auto_explain.log_format = json",
        "auto_explain.log_level = notice",
      ]
    ) await db.unsafe(`set local ${setting}`);
    notices.length = 0;
    await DISPATCH(db);
  } catch (error) {
    console.log(`(no auto_explain breakdown: ${(error as Error).message})`);
    return;
  } finally {
    await db`rollback to savepoint bench`;
  }
  const statement = notices.map(parseExplainNotice)
    .find((explained) => explained?.plan["Query Text"].trimStart().startsWith("with due as"));
  if (!statement) {
    return console.log("(no auto_explain breakdown: the dispatch statement was not reported)");
  }
  printBreakdown(statement);
}

function printBreakdown({ durationMs, plan }: ExplainedStatement): void {
  const root = plan.Plan;
  const cte = (name: string) => root.Plans?.find((node) => node["Subplan Name"] === `CTE ${name}`);
  const [due, sent, newRuns] = [cte("due"), cte("sent"), cte("new_runs")];
  if (!due || !sent || !newRuns) {
    return console.log("(no auto_explain breakdown: unexpected plan shape)");
  }
  const triggers = plan.Triggers ?? [];
  const parts: [string, number][] = [
    ["pick due schedules (CTE due: scan, anti-join on runs, sort, lock)", due["Actual Total Time"]],
    [
      "claims + sign + net.http_post (CTE sent)",
      sent["Actual Total Time"] - due["Actual Total Time"],
    ],
    [
      "insert auto_sync.runs (CTE new_runs)",
      newRuns["Actual Total Time"] - sent["Actual Total Time"],
    ],
    [
      "update auto_sync.schedules (join + update)",
      root["Actual Total Time"] - newRuns["Actual Total Time"],
    ],
    ...triggers.map((t): [string, number] => [
      `foreign key check ${t["Constraint Name"] ?? t["Trigger Name"]} (${fmt(t.Calls)} calls)`,
      t.Time,
    ]),
  ];
  const accounted = parts.reduce((sum, [, ms]) => sum + ms, 0);
  parts.push(["rest (plpgsql, settings, Vault keys, ...)", durationMs - accounted]);
  console.log(
    `\none dispatch() under auto_explain (instrumented: ${fmt(durationMs)} ms; read the shares):`,
  );
  report.table([
    ["part of the dispatch statement", "ms", "share"],
    ...parts.map(([name, ms]) => [name, fmt(ms), `${fmt((100 * ms) / durationMs)}%`]),
  ]);
  if (triggers.some((t) => t["Constraint Name"] === "schedules_user_id_fkey")) {
    console.log(
      "(schedules_user_id_fkey is checked only because this benchmark inserted the schedules in the same\n" +
        " transaction; on committed schedules the update leaves user_id alone and Postgres skips the check)",
    );
  }
}

async function main(): Promise<void> {
  const notices: string[] = [];
  const sql = postgres(dbUrl, {
    max: 1,
    onnotice: (notice) => notices.push(notice.message),
    connection: { application_name: "dispatch bench" },
  });
  const db = await sql.reserve();
  const measurements: Measurement[] = [
    { name: "auto_sync.dispatch()", run: DISPATCH, queues: true, times: [] },
    { name: "baseline: bare net.http_post()", run: BASELINE, queues: true, times: [] },
    { name: "breakdown: claims jsonb::text only", run: CLAIMS_ONLY, queues: false, times: [] },
    {
      name: "breakdown: claims + auto_sync.sign()",
      run: CLAIMS_AND_SIGN,
      queues: false,
      times: [],
    },
  ];
  try {
    await db`begin`;
    const started = performance.now();
    const setAside = await setAsideOtherDueSchedules(db);
    // SCHEDULES users, all due; dispatch() may send them all in one tick.
    await createBenchSchedules(db, { count: SCHEDULES, dueEvery: 1, batchLimit: SCHEDULES });
    report.section(
      `dispatch: one tick over ${
        fmt(SCHEDULES)
      } due schedules, ${ROUNDS} rounds, one rolled-back transaction`,
    );
    console.log(
      `setup (users, schedules, settings): ${fmt(performance.now() - started)} ms; ${
        describeSetAside(setAside)
      }`,
    );
    for (let round = 0; round < ROUNDS; round++) {
      // Dispatch and baseline swap places each round; the breakdown runs last.
      const [first, second] = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const index of [first, second, 2, 3]) await timeInSavepoint(db, measurements[index]);
    }
    reportTimes(measurements);
    await explainDispatch(db, notices);
  } finally {
    await db`rollback`.catch(() => {});
    db.release();
    await sql.end();
  }
}

await main();
