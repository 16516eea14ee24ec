/**
 * Benchmark 6: a new mailbox's first import through the real path, and fair share.
 *
 * Everything goes the way production goes: the pg_cron job ticks (every second here,
 * tests/support/dispatch_tick.ts, so the tick's own wait stays out of the figure),
 * auto_sync.dispatch() signs, pg_net sends, cron-auto-sync verifies and imports, and a
 * partial run is continued by auto_sync.continue_run. The functions run behind a
 * gateway of their own with the platform's default limits (local-stack/isolate_limits.ts:
 * 150 s wall clock, CPU 1 s soft / 2 s hard, 256 MB) and the functions' default budget.
 *
 * 1. First import. A mailbox of N messages (bench/mail_corpus.ts: 2–200 KB, 5 of 5 MB;
 *    10,000, and 50,000 in the full run) imported from the moment its schedule is
 *    enabled until every message is stored, against the raw fetch of the same mailbox
 *    over one imapflow connection (bench/import_child.ts `raw`: the importer's FETCH
 *    query in its chunks, no parsing, no database), run before and after. Goal: raw
 *    time / first-import time >= 0.2×. With it: runs, function instances, each
 *    instance's peak memory as the runtime counts it (V8 heap used + external, logged
 *    by local-stack/isolate_host.ts), its CPU when the runtime retired it (the soft
 *    limit) and in all (the isolate thread's, as the runtime counts it).
 * 2. Fairness. An honest user's first import (H messages) in a fresh instance, alone,
 *    and with two users behind a drip server (one message every 4 s, the hostile case
 *    that holds a run slot longest) dispatched into the same instance first; rounds
 *    interleaved; honest time = its first dispatch to its mail complete. Goal: with /
 *    alone <= 1.5×.
 *
 * Fails only when something is wrong (a message missing or twice, a run cut off).
 *
 *   deno run --allow-all bench/first_import_bench.ts [--mailboxes 10000,50000] [--rounds 3] [--smoke]
 * (--allow-all: it writes Maildir files as Dovecot's user and runs child processes)
 */
import { DEFAULT_LIMITS } from "../functions-shared/import_emails/import_run.ts";
import type { Mailbox } from "../functions-shared/import_emails/mail_store.ts";
import { threadCpuMs } from "../local-stack/isolate_limits.ts";
import { withFastDispatchTick } from "../tests/support/dispatch_tick.ts";
import type { GatewayProcess } from "../tests/support/gateway_process.ts";
import { type FolderCopy, startHostileServer } from "../tests/support/hostile_imap_server.ts";
import { addMailbox, createImapUser, message } from "../tests/support/imap.ts";
import { FUNCTION_SECRETS, limitedGateway, sleep } from "../tests/support/limited_gateway.ts";
import { connect, createUser } from "../tests/support/local_stack.ts";
import type { ChildReport, ChildRequest } from "./import_child.ts";
import { linkMaildir, openInbox, removeMaildir, warmUp, writeMaildir } from "./import_mail.ts";
import { mailboxMessages } from "./mail_corpus.ts";
import { fmt, median, ratio, spread } from "./support/figures.ts";
import * as report from "./support/report.ts";
import { sizes } from "./support/sizes.ts";

function flag(name: string): string | undefined {
  const index = Deno.args.indexOf(`--${name}`);
  return index >= 0 ? Deno.args[index + 1] : undefined;
}

const { bigMessages: BIG, honest: HONEST } = sizes.firstImport;
/** `--mailboxes 10000,50000` overrides the sizes; `--rounds N` the fairness rounds (0: none). */
const MAILBOXES = flag("mailboxes")?.split(",").map(Number) ?? sizes.firstImport.mailboxes;
const ROUNDS = Number(flag("rounds") ?? sizes.firstImport.rounds);
if (![...MAILBOXES, ROUNDS + 1].every((n) => Number.isInteger(n) && n > 0)) {
  throw new Error(`Invalid --mailboxes "${flag("mailboxes")}" or --rounds "${flag("rounds")}"`);
}
const FIRST_IMPORT_GOAL = report.atLeast(0.2); // raw fetch time / first-import time
const FAIRNESS_GOAL = report.atMost(1.5); // honest time with two hostile users / alone
const DRIP_MS = 4_000;

const repo = new URL("../", import.meta.url).pathname;
const sql = connect();
const created = { authUsers: [] as string[], imapUsers: [] as string[] };
const MIB = 1024 * 1024;

interface ImapUser {
  username: string;
  password: string;
}

async function newImapUser(): Promise<ImapUser> {
  const imapUser = await createImapUser();
  created.imapUsers.push(imapUser.username);
  return imapUser;
}

async function newUser(label: string, imapUser: ImapUser, options: { port?: number } = {}) {
  const userId = await createUser(sql, label);
  created.authUsers.push(userId);
  const mailboxId = await addMailbox(
    sql,
    userId,
    imapUser,
    options.port ? { tls: "plain", port: options.port } : {},
  );
  return { userId, mailboxId };
}

/** The raw fetch of a mailbox over one imapflow connection, in a child process (import_child.ts). */
async function rawFetch(userId: string, imapUser: ImapUser, count: number): Promise<number> {
  const [mailbox] = await sql<Mailbox[]>`
    select id, user_id, host, port, tls_mode, username, auth_kind, folders, paused_reason
      from auto_sync.import_targets(${userId}::uuid)`;
  const request: ChildRequest = {
    mode: "raw",
    mailbox,
    password: imapUser.password,
    limits: {
      maxMessages: count,
      maxSeconds: 3_600,
      maxMessageBytes: DEFAULT_LIMITS.maxMessageBytes,
      chunkSize: DEFAULT_LIMITS.chunkSize,
    },
  };
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${repo}bench/import_child.ts`, JSON.stringify(request)],
    cwd: repo,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (output.code !== 0) throw new Error(`Raw fetch exited with ${output.code}`);
  const child = JSON.parse(
    new TextDecoder().decode(output.stdout).trim().split("\n").at(-1)!,
  ) as ChildReport;
  if (child.fetched !== count) throw new Error(`Raw fetch got ${child.fetched} of ${count}`);
  return child.wall_ms;
}

/** The gateway's functions as the platform runs them, with the stack's endpoint pointed at it. */
async function withPlatformGateway<T>(task: (gateway: GatewayProcess) => Promise<T>): Promise<T> {
  // 48 instances alive at once: a 50,000 first import takes a fresh one every ~4 s and
  // the stack keeps a retired one until its 150 s end (the platform drops it once idle).
  const gateway = await limitedGateway(["--instance-slots", "48"], FUNCTION_SECRETS);
  const [{ endpoint_url: endpoint }] = await sql`select endpoint_url from auto_sync.settings`;
  await sql`update auto_sync.settings set endpoint_url = ${`${gateway.functionsUrl}/cron-auto-sync`}`;
  try {
    return await withFastDispatchTick(sql, 1, () => task(gateway));
  } finally {
    await sql`update auto_sync.settings set endpoint_url = ${endpoint}`;
    await gateway.stop();
  }
}

/** Waits until the mailbox holds `count` distinct messages; throws on a duplicate or after `timeoutMs`. */
async function mailComplete(mailboxId: string, count: number, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (true) {
    const [row] = await sql`
      select count(*)::int as emails, count(distinct uid)::int as uids
        from public.emails where mailbox_id = ${mailboxId}`;
    if (row.emails !== row.uids) throw new Error(`Mailbox ${mailboxId}: a message stored twice`);
    if (row.emails >= count) return;
    if (Date.now() - started > timeoutMs) {
      throw new Error(`Mailbox ${mailboxId}: ${row.emails} of ${count} after ${timeoutMs} ms`);
    }
    await sleep(100);
  }
}

async function userRuns(userId: string) {
  return await sql`
    select status, error, details, dispatched_at, started_at, finished_at
      from auto_sync.runs where user_id = ${userId} order by created_at`;
}

/** What the gateway's log says about its instances: peak memory (pid) and CPU when retired. */
function instanceFigures(output: string) {
  const peaks = new Map<number, number>();
  const retiredCpu: number[] = [];
  let terminated = 0;
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    const text = String(entry.message ?? entry.msg ?? "");
    if (text === "Memory peak" && entry.function === "cron-auto-sync") {
      const pid = Number(entry.pid);
      peaks.set(pid, Math.max(peaks.get(pid) ?? 0, Number(entry.counted)));
    } else if (/instance retired: CPU/.test(text)) retiredCpu.push(Number(entry.cpu_ms));
    else if (/instance terminated/.test(text)) terminated++;
  }
  // Each instance's CPU so far (alive until its wall clock ends): what its imports spent.
  const cpu = [...peaks.keys()].map((pid) => threadCpuMs(pid)).filter((ms) => ms !== null);
  return { peaks: [...peaks.values()], retiredCpu, cpu: cpu as number[], terminated };
}

// --- 1. first import --------------------------------------------------------------------

async function firstImport(count: number) {
  const imapUser = await newImapUser();
  const written = await writeMaildir(
    imapUser.username,
    mailboxMessages({ from: 0, to: count }, { count, bigCount: BIG }),
  );
  if (await openInbox(imapUser) !== count) throw new Error(`Seeding ${count} messages failed`);
  await warmUp(imapUser);
  const { userId, mailboxId } = await newUser("bench-first-import", imapUser);
  console.log(
    `${fmt(count)} messages (${BIG} of 5 MB), ${fmt(written.bytes / 1e6)} MB, seeded`,
  );

  const rawBefore = await rawFetch(userId, imapUser, count);
  const { importMs, runs, figures } = await withPlatformGateway(async (gateway) => {
    const started = Date.now();
    await sql`select auto_sync.enable(${userId})`;
    await mailComplete(mailboxId, count, 600_000);
    const importMs = Date.now() - started;
    await sleep(300); // the last run's finish_run
    return { importMs, runs: await userRuns(userId), figures: instanceFigures(gateway.output()) };
  });
  await sql`select auto_sync.disable(${userId})`;
  const rawAfter = await rawFetch(userId, imapUser, count);
  const raw = (rawBefore + rawAfter) / 2;

  if (figures.terminated > 0) throw new Error(`${figures.terminated} instance(s) terminated`);
  if (runs.at(-1)?.status !== "succeeded") {
    throw new Error(`Last run ${runs.at(-1)?.status}: ${runs.at(-1)?.error}`);
  }
  const notStarted = runs.filter((run) => run.details?.not_started).length;
  const dispatchedToDone = runs.at(-1)!.finished_at - runs[0].dispatched_at;
  // Where the time went: in runs, before a run starts (pg_net, the gateway, a cold
  // instance), and between one run's end and the next one's dispatch (continue_run).
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const phases = {
    running: sum(runs.map((run) => run.finished_at - run.started_at)),
    toStart: sum(runs.map((run) => run.started_at - run.dispatched_at)),
    between: sum(runs.slice(1).map((run, i) => run.dispatched_at - runs[i].finished_at)),
  };
  const value = raw / importMs;
  return {
    count,
    importMs,
    dispatchedToDone,
    rawBefore,
    rawAfter,
    ratio: value,
    runs: runs.length,
    notStarted,
    phases,
    figures,
  };
}

// --- 2. fairness --------------------------------------------------------------------------

/** A folder of small messages the drip server sends one every DRIP_MS. */
function dripFolder(): FolderCopy {
  const source = new TextEncoder().encode(message({ subject: "drip" }));
  return {
    uidValidity: 777,
    messages: Array.from({ length: 200 }, (_, i) => ({ uid: i + 1, source })),
  };
}

async function honestImport(honestSource: ImapUser, withHostile: boolean): Promise<number> {
  const imapUser = await newImapUser();
  await linkMaildir(honestSource.username, imapUser.username);
  await openInbox(imapUser);
  const honest = await newUser("bench-fair-honest", imapUser);
  const server = withHostile
    ? startHostileServer(dripFolder(), {
      async fetch(uids, tag, io) {
        for (const [i, uid] of uids.entries()) {
          await sleep(DRIP_MS);
          await io.write(io.honestRow(uid, i + 1));
        }
        await io.write(`${tag} OK done\r\n`);
      },
    })
    : null;
  const hostileUsers: string[] = [];
  try {
    if (server) {
      for (let i = 0; i < 2; i++) {
        hostileUsers.push(
          (await newUser("bench-fair-hostile", await newImapUser(), { port: server.port })).userId,
        );
      }
    }
    return await withPlatformGateway(async () => {
      for (const userId of hostileUsers) await sql`select auto_sync.enable(${userId})`;
      if (server) await hostileRunsStarted(hostileUsers);
      await sql`select auto_sync.enable(${honest.userId})`;
      await mailComplete(honest.mailboxId, HONEST, 120_000);
      await sleep(300);
      const runs = await userRuns(honest.userId);
      if (runs.at(-1)?.status !== "succeeded") {
        throw new Error(`Honest import: last run ${runs.at(-1)?.status} (${runs.at(-1)?.error})`);
      }
      return runs.at(-1)!.finished_at - runs[0].dispatched_at;
    });
  } finally {
    for (const userId of [honest.userId, ...hostileUsers]) {
      await sql`select auto_sync.disable(${userId})`;
    }
    server?.close();
  }
}

async function hostileRunsStarted(userIds: string[]): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < 30_000) {
    const [row] = await sql`
      select count(*)::int as running from auto_sync.runs
       where user_id = any(${userIds}::uuid[]) and started_at is not null`;
    if (row.running >= userIds.length) return;
    await sleep(100);
  }
  throw new Error("The hostile users' runs did not start");
}

async function fairness() {
  const source = await newImapUser();
  await writeMaildir(
    source.username,
    mailboxMessages({ from: 0, to: HONEST }, {
      count: HONEST,
      bigCount: 0,
      seed: 7,
    }),
  );
  if (await openInbox(source) !== HONEST) throw new Error("Seeding the honest mailbox failed");
  await warmUp(source);
  const alone: number[] = [];
  const hostile: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    alone.push(await honestImport(source, false));
    hostile.push(await honestImport(source, true));
  }
  return { alone, hostile, ratios: hostile.map((ms, i) => ms / alone[i]) };
}

// --- report -------------------------------------------------------------------------------

const mib = (bytes: number) => fmt(bytes / MIB, 1);

async function main() {
  report.section("1. first import through pg_cron -> dispatch -> pg_net -> cron-auto-sync");
  const header = [
    "mailbox",
    "first import s",
    "first dispatch to done s",
    "raw s (before, after)",
    "raw / import",
    "runs (not started)",
    "s in runs / to start / between",
    "instances",
    "peak heap+ext per instance MiB",
    "CPU at retire ms",
    "CPU per instance ms",
  ];
  const results = [];
  for (const count of MAILBOXES) {
    const result = await firstImport(count);
    results.push(result);
    const { figures } = result;
    // Each mailbox's row as soon as it is measured (the 50,000 one takes minutes).
    report.table([header, [
      fmt(result.count),
      fmt(result.importMs / 1000, 1),
      fmt(result.dispatchedToDone / 1000, 1),
      `${fmt(result.rawBefore / 1000, 1)}, ${fmt(result.rawAfter / 1000, 1)}`,
      ratio(result.ratio),
      `${result.runs} (${result.notStarted})`,
      [result.phases.running, result.phases.toStart, result.phases.between]
        .map((ms) => fmt(ms / 1000, 1)).join(" / "),
      String(figures.peaks.length),
      figures.peaks.length
        ? `${mib(median(figures.peaks))} (max ${mib(Math.max(...figures.peaks))})`
        : "n/a",
      figures.retiredCpu.length ? spread(figures.retiredCpu) : "none retired",
      figures.cpu.length ? figures.cpu.map((ms) => fmt(ms)).join(", ") : "n/a",
    ]]);
  }
  for (const result of results) {
    report.summary(
      `first import of ${fmt(result.count)} through the real path: ${
        fmt(result.importMs / 1000, 1)
      } s, raw fetch ${fmt((result.rawBefore + result.rawAfter) / 2000, 1)} s: ${
        ratio(result.ratio)
      } raw (${
        report.goal(FIRST_IMPORT_GOAL, result.ratio)
      }); ${result.runs} runs, ${result.figures.peaks.length} instances, peak heap+ext ${
        result.figures.peaks.length ? mib(Math.max(...result.figures.peaks)) : "n/a"
      } MiB`,
    );
  }

  if (ROUNDS === 0) return;
  report.section(
    `2. fairness: an honest first import of ${
      fmt(HONEST)
    }, alone vs with two drip users in its instance`,
  );
  const fair = await fairness();
  report.table([
    ["round", "alone ms", "with two hostile users ms", "ratio"],
    ...fair.alone.map((ms, i) => [
      String(i + 1),
      fmt(ms),
      fmt(fair.hostile[i]),
      ratio(fair.ratios[i]),
    ]),
  ]);
  const fairRatio = median(fair.ratios);
  report.summary(
    `fairness: honest import with two hostile (drip) users in its instance / alone: ${
      ratio(fairRatio)
    } (median of ${ROUNDS}; ${report.goal(FAIRNESS_GOAL, fairRatio)})`,
  );
}

async function cleanup() {
  if (created.authUsers.length) {
    await sql`delete from auth.users where id = any(${created.authUsers}::uuid[])`;
  }
  for (const username of created.imapUsers) {
    try {
      removeMaildir(username);
    } catch { /* never written */ }
  }
  await sql.end();
}

try {
  await main();
} finally {
  await cleanup();
}
