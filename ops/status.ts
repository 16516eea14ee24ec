/**
 * Auto-sync at a glance: `deno task status --db-url <url>` (or `--local-stack`).
 * Schedules, the most recent runs, and a chart of run outcomes per hour over the
 * last 24 hours, straight from the tables the functions write (the truth about a
 * run; cron.job_run_details only knows that a request was queued).
 *   --user <uuid>   only this user's schedule and runs
 *   --limit <n>     how many schedules and runs to list (default 15)
 */
import { connectOps } from "./database.ts";
import { parseArgs } from "node:util";
import { safeLine } from "../functions-shared/import_emails/safe_text.ts";
import * as localStack from "../local-stack/urls.ts";

const { values } = parseArgs({
  options: {
    "db-url": { type: "string" },
    "local-stack": { type: "boolean", default: false },
    user: { type: "string" },
    limit: { type: "string", default: "15" },
  },
});
const dbUrl = values["local-stack"]
  ? localStack.dbUrl
  : values["db-url"] ?? Deno.env.get("SUPABASE_DB_URL");
if (!dbUrl) {
  console.error(
    "Usage: deno task status --db-url <postgres url> | --local-stack [--user <uuid>] [--limit <n>]",
  );
  Deno.exit(2);
}
const limit = Math.max(1, Math.min(200, Number(values.limit) || 15));
const user = values.user ?? null;
if (user && !/^[0-9a-f-]{36}$/i.test(user)) {
  console.error(`Invalid --user "${user}": expected a uuid`);
  Deno.exit(2);
}

// One character per outcome in the chart, and the legend.
const MARKS: Record<string, string> = {
  succeeded: "█",
  partial: "▓",
  skipped: "░",
  failed: "x",
  rejected: "!",
  lost: "?",
  dispatched: "·",
  accepted: "·",
  running: "·",
};

function table(rows: Record<string, unknown>[], columns: string[]) {
  if (rows.length === 0) return console.log("  (none)");
  // Cells hold stored text a mail server or a user wrote: no control character
  // (ESC, BEL...) reaches the terminal.
  const text = rows.map((row) => columns.map((column) => safeLine(String(row[column] ?? ""), 200)));
  const widths = columns.map((column, i) =>
    Math.max(column.length, ...text.map((cells) => cells[i].length))
  );
  console.log("  " + columns.map((column, i) => column.padEnd(widths[i])).join("  "));
  console.log("  " + widths.map((width) => "-".repeat(width)).join("  "));
  for (const cells of text) {
    console.log("  " + cells.map((cell, i) => cell.padEnd(widths[i])).join("  "));
  }
}

const ago = (date: Date | null) => {
  if (!date) return "";
  const seconds = Math.round((Date.now() - date.getTime()) / 1000);
  const magnitude = Math.abs(seconds);
  const text = magnitude < 120
    ? `${magnitude} s`
    : magnitude < 7200
    ? `${Math.round(magnitude / 60)} min`
    : `${Math.round(magnitude / 3600)} h`;
  return seconds >= 0 ? `${text} ago` : `in ${text}`;
};

const sql = connectOps(dbUrl);
try {
  const [totals] = await sql`
    select count(*)::int as schedules,
           count(*) filter (where enabled)::int as enabled,
           count(*) filter (where enabled and next_run_at <= now())::int as due
      from auto_sync.schedules where ${user}::uuid is null or user_id = ${user}::uuid`;
  console.log(`Schedules: ${totals.schedules} (${totals.enabled} enabled, ${totals.due} due now)`);
  const schedules = await sql`
    select s.* from auto_sync.schedules s
     where ${user}::uuid is null or s.user_id = ${user}::uuid
     order by s.enabled desc, s.next_run_at limit ${limit}`;
  table(
    schedules.map((s) => ({
      user: String(s.user_id).slice(0, 8),
      every: s.every,
      enabled: s.enabled ? "yes" : "no",
      "next run": s.enabled ? ago(s.next_run_at) : "",
      "last outcome": s.last_outcome ?? "",
      when: ago(s.last_outcome_at),
      ...("consecutive_failures" in s ? { failures: s.consecutive_failures } : {}),
      ...("paused_reason" in s && s.paused_reason
        ? { paused: String(s.paused_reason).slice(0, 40) }
        : {}),
    })),
    [
      "user",
      "every",
      "enabled",
      "next run",
      "last outcome",
      "when",
      ...(schedules.some((s) => "consecutive_failures" in s) ? ["failures"] : []),
      ...(schedules.some((s) => s.paused_reason) ? ["paused"] : []),
    ],
  );

  console.log(`\nRecent runs:`);
  const runs = await sql`
    select id, user_id, trigger, status, created_at, finished_at, error,
           details ->> 'inserted' as inserted
      from auto_sync.runs where ${user}::uuid is null or user_id = ${user}::uuid
     order by created_at desc limit ${limit}`;
  table(
    runs.map((run) => ({
      run: String(run.id).slice(0, 8),
      user: String(run.user_id).slice(0, 8),
      trigger: run.trigger,
      status: run.status,
      started: ago(run.created_at),
      seconds: run.finished_at ? ((run.finished_at - run.created_at) / 1000).toFixed(1) : "",
      new: run.inserted ?? "",
      error: String(run.error ?? "").slice(0, 50),
    })),
    ["run", "user", "trigger", "status", "started", "seconds", "new", "error"],
  );

  console.log(
    `\nOutcomes per hour, last 24 h (${
      Object.entries(MARKS).filter(([k]) => !["accepted", "running"].includes(k)).map((
        [status, mark],
      ) => `${mark} ${status === "dispatched" ? "in flight" : status}`).join("  ")
    }):`,
  );
  const hours = await sql`
    select h.hour, r.status, count(r.id)::int as n
      from generate_series(date_trunc('hour', now()) - interval '23 hours', date_trunc('hour', now()), interval '1 hour') as h(hour)
      left join auto_sync.runs r
        on date_trunc('hour', r.created_at) = h.hour and (${user}::uuid is null or r.user_id = ${user}::uuid)
     group by h.hour, r.status order by h.hour, r.status`;
  const byHour = new Map<string, Map<string, number>>();
  for (const row of hours) {
    const key = (row.hour as Date).toISOString().slice(11, 13) + ":00";
    const counts = byHour.get(key) ?? new Map<string, number>();
    if (row.status) counts.set(row.status, row.n);
    byHour.set(key, counts);
  }
  const most = Math.max(
    1,
    ...[...byHour.values()].map((counts) => [...counts.values()].reduce((a, b) => a + b, 0)),
  );
  const width = 60;
  for (const [hour, counts] of byHour) {
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    let bar = "";
    for (const status of Object.keys(MARKS)) {
      const n = counts.get(status) ?? 0;
      if (n > 0) bar += MARKS[status].repeat(Math.max(1, Math.round((n / most) * width)));
    }
    const failedish = (counts.get("failed") ?? 0) + (counts.get("rejected") ?? 0) +
      (counts.get("lost") ?? 0);
    console.log(
      `  ${hour} ${bar.padEnd(width + 6)} ${total}${failedish ? ` (${failedish} not ok)` : ""}`,
    );
  }
} finally {
  await sql.end();
}
