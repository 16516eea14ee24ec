/**
 * Health check of a deployment: `deno task doctor --db-url <url> --functions-url <.../functions/v1>`
 * (or `--local-stack`). Prints a pass/fail list; exits 1 when anything fails.
 * Checks: database, Vault key, cron job and its recent runs, endpoint setting, recent
 * run outcomes, Option-1 leftovers, function reachable, signed probe, unsigned probe.
 *
 * The signed probe is signed by the database itself (auto_sync.sign with the Vault
 * keys, exactly as dispatch() signs), for a run that does not exist: a healthy
 * function answers 404 and imports nothing. An unsigned probe must get 401.
 */
import postgres from "postgres";
import { parseArgs } from "node:util";
import { sendUnsignedProbe } from "./probe.ts";
import * as localStack from "../local-stack/urls.ts";

const { values } = parseArgs({
  options: {
    "db-url": { type: "string" },
    "functions-url": { type: "string" },
    "local-stack": { type: "boolean", default: false },
  },
});
const local = values["local-stack"];
const dbUrl = local ? localStack.dbUrl : values["db-url"] ?? Deno.env.get("SUPABASE_DB_URL");
const functionsUrl = (local ? localStack.functionsUrl : values["functions-url"])
  ?.replace(/\/$/, "");
if (!dbUrl || !functionsUrl) {
  console.error(
    "Usage: deno task doctor --db-url <postgres url> --functions-url <https://<ref>.supabase.co/functions/v1> | --local-stack",
  );
  Deno.exit(2);
}
const endpoint = `${functionsUrl}/cron-auto-sync`;

let failures = 0;
function report(ok: boolean, name: string, detail: string) {
  if (!ok) failures += 1;
  console.log(`${ok ? "PASS" : "FAIL"}  ${name.padEnd(34)} ${detail}`);
}
async function check(name: string, test: () => Promise<[boolean, string]>) {
  try {
    const [ok, detail] = await test();
    report(ok, name, detail);
  } catch (error) {
    report(false, name, (error as Error).message.split("\n")[0]);
  }
}

const sql = postgres(dbUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });

await check("database reachable", async () => {
  const [row] = await sql`select current_database() as db, version() as version`;
  return [true, `${row.db}, ${String(row.version).split(" ").slice(0, 2).join(" ")}`];
});

await check("signing key in Vault", async () => {
  const [row] = await sql`select cardinality(auto_sync.signing_keys()) as keys`;
  return [true, `${row.keys} key(s)${row.keys > 1 ? " (a rotation is in progress)" : ""}`];
});

await check("cron job auto-sync-dispatch", async () => {
  const [job] =
    await sql`select schedule, active, command from cron.job where jobname = 'auto-sync-dispatch'`;
  if (!job) return [false, "missing: apply the migrations"];
  const healthy = job.active && job.schedule === "* * * * *" &&
    job.command === "select auto_sync.dispatch()";
  return [healthy, `${job.active ? "active" : "INACTIVE"}, '${job.schedule}', ${job.command}`];
});

await check("cron job recent runs", async () => {
  const runs = await sql`
    select d.status, d.start_time, d.return_message from cron.job_run_details d join cron.job j using (jobid)
     where j.jobname = 'auto-sync-dispatch' order by d.start_time desc limit 5`;
  if (runs.length === 0) return [false, "no run recorded yet (wait a minute)"];
  const failed = runs.filter((run) => run.status !== "succeeded");
  const ageSeconds = (Date.now() - runs[0].start_time.getTime()) / 1000;
  if (ageSeconds > 180) {
    return [false, `last run ${Math.round(ageSeconds)} s ago: is pg_cron running?`];
  }
  return [
    failed.length === 0,
    failed.length === 0
      ? `last ${runs.length} succeeded, latest ${Math.round(ageSeconds)} s ago`
      : `${failed.length} of the last ${runs.length} failed: ${
        String(failed[0].return_message).slice(0, 120)
      }`,
  ];
});

await check("endpoint URL setting", async () => {
  const [row] = await sql`select endpoint_url from auto_sync.settings`;
  if (!row?.endpoint_url) {
    return [false, "auto_sync.settings.endpoint_url is not set: nothing is dispatched"];
  }
  return [
    row.endpoint_url === endpoint,
    row.endpoint_url === endpoint ? row.endpoint_url : `${row.endpoint_url} (expected ${endpoint})`,
  ];
});

await check("runs in the last 24 h", async () => {
  const rows = await sql`
    select status, count(*)::int as n from auto_sync.runs
     where created_at > now() - interval '24 hours' group by status order by status`;
  const total = rows.reduce((sum, row) => sum + row.n, 0);
  const bad = rows.filter((row) => ["failed", "rejected"].includes(row.status)).reduce(
    (sum, row) => sum + row.n,
    0,
  );
  const summary = rows.map((row) => `${row.status} ${row.n}`).join(", ") || "none";
  return [total === 0 || bad < total, summary];
});

await check("no Option-1 leftovers", async () => {
  // The old design's stored service-role key: the clean-up migration removes it, but a
  // non-superuser run can leave database-level settings behind.
  const [row] = await sql`
    select
      (select count(*)::int from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relname = 'auto_sync_config' and c.relkind in ('r', 'p')) as tables,
      (select count(*)::int from pg_catalog.pg_db_role_setting s, unnest(s.setconfig) as setting
        where setting ~* '^app\.settings\.[a-z_]*(service|encryption)[a-z_]*key=') as settings,
      (select count(*)::int from cron.job
        where jobname <> 'auto-sync-dispatch' and command ~* 'functions/v1/' and command ~* '(bearer|apikey|service_role)') as jobs`;
  const found = [
    row.tables ? `${row.tables} auto_sync_config table(s)` : "",
    row.settings ? `${row.settings} key setting(s) in pg_db_role_setting` : "",
    row.jobs ? `${row.jobs} cron job(s) calling a function with a credential` : "",
  ].filter(Boolean);
  return [
    found.length === 0,
    found.length === 0 ? "none" : `${found.join(", ")}: see SECURITY.md, "Leaving Option 1"`,
  ];
});

await check("function reachable", async () => {
  const response = await fetch(endpoint, { method: "GET", signal: AbortSignal.timeout(15_000) });
  await response.body?.cancel();
  return [
    response.status === 405,
    `GET ${endpoint} -> ${response.status}${
      response.status === 405 ? " (method not allowed, as it should)" : ""
    }`,
  ];
});

await check("signed probe accepted", async () => {
  const runId = crypto.randomUUID();
  const timestamp = Math.floor(Date.now() / 1000);
  const [row] = await sql`
    with probe as (
      select jsonb_build_object('aud', 'cron-auto-sync', 'scope', 'import-emails',
               'sub', '00000000-0000-4000-8000-00000000d0c7', 'run_id', ${runId}::text,
               'iat', ${timestamp}::bigint, 'exp', ${timestamp + 300}::bigint) as body)
    select body::text as body, auto_sync.sign(${runId}, ${timestamp}, body::text, auto_sync.signing_keys()) as signature
      from probe`;
  const response = await fetch(endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": runId,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": row.signature,
    },
    body: row.body,
    signal: AbortSignal.timeout(15_000),
  });
  await response.body?.cancel();
  return [
    response.status === 404,
    response.status === 404
      ? "signed by the database's Vault keys, verified by the function (404: no such run, nothing imported)"
      : `HTTP ${response.status}: ${
        response.status === 401
          ? "the function's keyring does not hold the Vault key"
          : "unexpected"
      }`,
  ];
});

await check("unsigned probe refused", async () => {
  const probe = await sendUnsignedProbe(endpoint);
  return [probe.verdict === "refused", `HTTP ${probe.status}`];
});

await sql.end();
console.log(failures === 0 ? "\nAll checks passed." : `\n${failures} check(s) failed.`);
Deno.exit(failures === 0 ? 0 : 1);
