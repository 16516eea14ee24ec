/**
 * Health check of a deployment: `deno task doctor --db-url <url> --functions-url <.../functions/v1>`
 * (or `--local-stack`). Prints a pass/fail list; exits 1 when anything fails.
 * Checks: database, Vault key, cron job and its recent runs, endpoint setting, recent
 * run outcomes, a stored service-role key, what the API roles can still use of pg_net and
 * Vault (a WARN, not a failure: on hosted and self-hosted Supabase the migration's revokes
 * may not apply; SECURITY.md), function reachable, signed probe, unsigned probe.
 *
 * The signed probe is signed by the database itself (auto_sync.sign with the Vault
 * keys, exactly as dispatch() signs), for a run that does not exist: a healthy
 * function answers 404 and imports nothing. An unsigned probe must get 401.
 */
import { connectOps } from "./database.ts";
import { parseArgs } from "node:util";
import { jsonbText } from "../functions-shared/wire/client/signed_request.ts";
import { probeClaims, sendProbe, sendUnsignedProbe } from "./probe.ts";
import * as localStack from "../local-stack/urls.ts";
import { API_ROLES, describeReach, extensionReach } from "./extension_reach.ts";

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
let warnings = 0;
function report(ok: boolean, name: string, detail: string) {
  if (!ok) failures += 1;
  console.log(`${ok ? "PASS" : "FAIL"}  ${name.padEnd(34)} ${detail}`);
}
/** A finding that needs a decision, not a failure: printed, never in the exit status. */
function warn(name: string, detail: string, lines: string[]) {
  warnings += 1;
  console.log(`WARN  ${name.padEnd(34)} ${detail}`);
  for (const line of lines) console.log(`        ${line}`);
}
async function check(name: string, test: () => Promise<[boolean, string]>) {
  try {
    const [ok, detail] = await test();
    report(ok, name, detail);
  } catch (error) {
    report(false, name, (error as Error).message.split("\n")[0]);
  }
}

const sql = connectOps(dbUrl);

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
    await sql`select schedule, active, command, auto_sync.dispatch_schedule() as expected
                from cron.job where jobname = 'auto-sync-dispatch'`;
  if (!job) return [false, "missing: apply the migrations"];
  const healthy = job.active && job.schedule === job.expected &&
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

await check("no stored service-role key", async () => {
  // The clean-up's own finder, as a dry run (auto_sync.remove_stored_service_key): the one
  // definition of what a stored key left behind (a non-superuser run can leave settings).
  // It changes nothing; the transaction is rolled back all the same.
  const rollBack = new Error("dry run over");
  let report: { clean: boolean; summary: string } | undefined;
  await sql.begin(async (tx) => {
    [{ report }] = await tx`
      select auto_sync.remove_stored_service_key(p_dry_run => true) as report`;
    throw rollBack;
  }).catch((error) => {
    if (error !== rollBack) throw error;
  });
  if (!report) return [false, "no report from auto_sync.remove_stored_service_key"];
  return [
    report.clean,
    report.clean
      ? "none"
      : `${
        report.summary.replace("service-key clean-up: dry run: ", "the clean-up ")
      }: see SECURITY.md, "Removing a stored service-role key"`,
  ];
});

try {
  const reach = await extensionReach(sql);
  if (reach.length === 0) {
    report(
      true,
      "API roles on net / vault",
      `none of ${API_ROLES.join(", ")} can use net or vault`,
    );
  } else {
    const roles = [...new Set(reach.map((entry) => entry.role))];
    warn(
      "API roles on net / vault",
      `${roles.join(", ")} can still use them: the revokes did not apply on this database`,
      [
        ...reach.map(describeReach),
        "What it means: whatever runs SQL as such a role can do this: a function or trigger of yours",
        "that runs as the caller (SECURITY INVOKER) behind the Data API, or anyone holding the",
        "service-role key for service_role. The Data API itself does not expose net or vault. Fix:",
        'SECURITY.md, "pg_net and Vault privileges" (the owner, supabase_admin, must revoke).',
      ],
    );
  }
} catch (error) {
  report(false, "API roles on net / vault", (error as Error).message.split("\n")[0]);
}

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
  // Claims built here, signed by the database with its Vault keys, as dispatch() signs.
  const claims = probeClaims();
  const body = jsonbText(claims);
  const [row] = await sql`
    select auto_sync.sign(${claims.run_id}, ${claims.iat}, ${body}, auto_sync.signing_keys()) as signature`;
  const probe = await sendProbe(endpoint, {
    id: claims.run_id,
    timestamp: String(claims.iat),
    signature: row.signature,
    body: new TextEncoder().encode(body),
  });
  return [
    probe.verdict === "accepted",
    probe.verdict === "accepted"
      ? "signed by the database's Vault keys, verified by the function (404: no such run, nothing imported)"
      : `HTTP ${probe.status}: ${
        probe.status === 401 ? "the function's keyring does not hold the Vault key" : "unexpected"
      }`,
  ];
});

await check("unsigned probe refused", async () => {
  const probe = await sendUnsignedProbe(endpoint);
  return [probe.verdict === "refused", `HTTP ${probe.status}`];
});

await sql.end();
const warned = warnings > 0 ? ` (${warnings} warning${warnings > 1 ? "s" : ""})` : "";
console.log(
  failures === 0 ? `\nAll checks passed${warned}.` : `\n${failures} check(s) failed${warned}.`,
);
Deno.exit(failures === 0 ? 0 : 1);
