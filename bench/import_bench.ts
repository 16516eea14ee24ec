/**
 * Benchmark 4: the IMAP importer (functions-shared/import_emails/) against the
 * local stack's Dovecot and Postgres.
 *
 * Mail. A mailbox of N messages (default 10,000; `--messages N`): sizes log-uniform
 * 2 KB–200 KB (median ~20 KB) plus 5 of 5 MB, realistic headers, text/plain,
 * multipart/alternative or multipart/mixed with a small attachment
 * (bench/mail_corpus.ts), and a second mailbox of N/10 messages (the same mix, the
 * same 5 big ones). Seeding is not timed in any figure: a short calibration times
 * IMAP APPEND against writing Maildir files straight into Dovecot's store, and the
 * faster one seeds (`--seed imap|maildir` forces one). Then every message's
 * metadata is fetched once, so Dovecot has parsed and cached BODYSTRUCTURE before
 * anything is timed (a real server has done that long ago for old mail).
 *
 * 1. First sync, throughput. In fresh child processes (bench/import_child.ts):
 *      importer  the production runner (tests/support/imap.ts `importer(sql, limits)`)
 *                with limits that import everything in one run (maxMessages 20,000,
 *                maxSeconds 3,600), the default chunk size and the 1 MiB byte bound,
 *                in one function instance whose budget is raised to allow it
 *                (MEASURED_INSTANCE says why)
 *      raw       the same IMAP session, the same FETCH query (uid, flags,
 *                internalDate, size, bodyStructure, source {start 0, maxLength
 *                1 MiB}) in the same chunks, each fully drained: no parsing, no DB
 *    Order raw, importer, raw on the big mailbox; report msg/s of each and the ratio
 *    importer / mean of the two raw runs. Goal: >= 0.5×. Then, for information, the
 *    same first import at the platform's default budget: follow-up runs of 500, each
 *    in a fresh instance, one after another until complete. With it: where the
 *    importer's time goes (FETCH streams, postal-mime and the rest of toRecord,
 *    store_batch), its CPU, and the CPU Postgres and Dovecot spent meanwhile.
 * 2. Memory, uncapped. Each child samples Deno.memoryUsage() every 10 ms: the peak
 *    of heap used + external (what the edge runtime counts), its VmHWM (peak RSS)
 *    beside: importer and raw on the small and on the big mailbox, and an idle child.
 *    Goal: importer big/small <= 1.5× (memory must not grow with the mailbox).
 * 3. Memory as the platform counts it, heap capped (--v8-flags=--max-heap-size):
 *    four first imports of the big mailbox at once in one process under 256 MiB vs
 *    four raw fetches side by side under the same cap (raw, imports, raw); goal: all
 *    complete, heap used + external never over 256 MiB, >= 0.5× the aggregate raw
 *    rate. Then one first import under 64 MiB vs one raw fetch under 64 MiB; goal:
 *    completes at >= 0.5× raw. The four mailboxes are Dovecot users holding the
 *    same messages (hard links). CPU of the child, Postgres and Dovecot beside.
 * 4. Incremental sync, in this process: append 10 new messages to the big mailbox,
 *    import (STATUS, EXAMINE, SEARCH, one FETCH), then import with nothing new
 *    (STATUS only), ROUNDS times; median wall time of each, their ratio, and the
 *    IMAP commands each sent (details.mailboxes[0].imap_commands).
 *
 * Figures only, no pass/fail on timings; it fails when something is wrong (a run
 * not succeeded, a message not imported). Everything it created is deleted at the
 * end: the auth users (their mailboxes, emails, runs and Vault secrets cascade) and
 * the Dovecot users' mail directories.
 *
 *   deno run --allow-all bench/import_bench.ts [--messages 10000] [--seed imap|maildir] [--chunk 10] [--smoke]
 * (--allow-all: it reads /proc, chowns Maildir files, runs child processes)
 */
import { DEFAULT_LIMITS } from "../functions-shared/import_emails/import_run.ts";
import { BYTES_PER_MESSAGE } from "../functions-shared/import_emails/isolate_budget.ts";
import type { Mailbox } from "../functions-shared/import_emails/mail_store.ts";
import {
  acceptedRun,
  addMailbox,
  appendMessages,
  createImapUser,
  importer,
} from "../tests/support/imap.ts";
import { connect, createUser, stateDir } from "../tests/support/local_stack.ts";
import type { ChildReport, ChildRequest } from "./import_child.ts";
import {
  appendOverImap,
  linkMaildir,
  openInbox,
  removeMaildir,
  type SeedResult,
  warmUp,
  writeMaildir,
} from "./import_mail.ts";
import { type GeneratedMessage, generateMessage, mailboxMessages } from "./mail_corpus.ts";
import { sizes } from "./support/sizes.ts";
import { fmt, median, ratio, spread } from "./support/figures.ts";
import * as report from "./support/report.ts";

function flag(name: string): string | undefined {
  const index = Deno.args.indexOf(`--${name}`);
  return index >= 0 ? Deno.args[index + 1] : undefined;
}

const MESSAGES = Number(flag("messages") ?? sizes.import.messages);
const SMALL_MESSAGES = Math.max(10, Math.round(MESSAGES / 10));
const {
  bigMessages: BIG_MESSAGES,
  calibration: CALIBRATION_MESSAGES,
  newMessages: NEW_MESSAGES,
  incrementalRounds: ROUNDS,
  concurrentImports: CONCURRENT_IMPORTS,
} = sizes.import;
const SEED_METHOD = flag("seed") ?? "auto";
const RATE_GOAL = report.atLeast(0.5); // importer msg/s over the raw fetch's, each measurement
const GROWTH_GOAL = report.atMost(1.5); // peak heap + external, big mailbox over small
const MB = 1000 * 1000;
const MIB = 1024 * 1024;
const mib = (bytes: number, decimals = 0) => fmt(bytes / MIB, decimals);

/** Per child: peaks of heap used + external (sampled every 10 ms), heap, external; VmHWM. */
function printMemoryTable(results: Measured[]): void {
  const rows = [[
    "child",
    "messages",
    "peak heap+ext MiB",
    "peak heap used MiB",
    "peak external MiB",
    "VmHWM (peak RSS) MiB",
    "samples",
  ]];
  for (const result of results) {
    rows.push([
      result.label,
      fmt(result.fetched),
      mib(result.memory.peak_counted, 1),
      mib(result.memory.peak_heap_used, 1),
      mib(result.memory.peak_external, 1),
      mib(result.memory.vm_hwm, 1),
      fmt(result.memory.samples),
    ]);
  }
  report.table(rows);
}
const LIMITS: ChildRequest["limits"] = {
  maxMessages: Math.max(20_000, MESSAGES),
  maxSeconds: 3_600,
  maxMessageBytes: DEFAULT_LIMITS.maxMessageBytes,
  chunkSize: Number(flag("chunk") ?? DEFAULT_LIMITS.chunkSize),
};
/**
 * The function instance budget (functions-shared/import_emails/isolate_budget.ts) the measured
 * imports run under. At the platform's defaults an instance receives 9,000 messages
 * in its life, a message counting one more per BYTES_PER_MESSAGE it brings (~3,300 of
 * this mix), and runs 4 imports at a time; a first import of a bigger mailbox is
 * then a chain of runs, each in a fresh instance. Parts 1–3 measure the importer
 * itself (its rate against the raw fetch, its memory as the runtime counts it), so
 * the budget is raised for them: one run imports the whole mailbox, and the
 * CONCURRENT_IMPORTS runs of part 3 all start at once (more than an instance at the
 * defaults would ever hold: a worst case for memory). What the defaults cost is
 * measured beside, in part 1: the same first import in follow-up runs at the
 * default limits, each in a fresh instance, one after another until complete.
 */
const MEASURED_INSTANCE: ChildRequest["instance"] = {
  // Every message at the byte bound, the most the budget can count it as.
  maxMessages: CONCURRENT_IMPORTS * LIMITS.maxMessages *
    (1 + Math.ceil(LIMITS.maxMessageBytes / BYTES_PER_MESSAGE)),
  maxConcurrentRuns: CONCURRENT_IMPORTS,
};
if (!Number.isInteger(MESSAGES) || MESSAGES < 10) {
  throw new Error(`Invalid --messages "${flag("messages")}"`);
}
if (!Number.isInteger(LIMITS.chunkSize) || LIMITS.chunkSize < 1) {
  throw new Error(`Invalid --chunk "${flag("chunk")}"`);
}
if (!["auto", "imap", "maildir"].includes(SEED_METHOD)) {
  throw new Error(`Invalid --seed "${SEED_METHOD}"`);
}

const repo = new URL("../", import.meta.url).pathname;
const sql = connect();
const created = { authUsers: [] as string[], imapUsers: [] as string[] };
const phases: [string, number][] = [];
async function phase<T>(name: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    phases.push([name, performance.now() - started]);
  }
}

const mb = (bytes: number, decimals = 1) => fmt(bytes / MB, decimals);
const seconds = (ms: number) => fmt(ms / 1000, 1);

// --- CPU of the servers -----------------------------------------------------------

/** utime+stime+cutime+cstime (s) summed over a process tree: exited children count through their parent's cutime. */
function treeCpuSeconds(rootPid: number): number {
  const parents = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parents.set(Number(entry.name), Number(fields[1]));
      cpu.set(
        Number(entry.name),
        (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100,
      );
    } catch { /* gone */ }
  }
  let total = 0;
  for (const [pid, seconds] of cpu) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parents.get(p)) {
      if (p === rootPid) {
        total += seconds;
        break;
      }
    }
  }
  return total;
}

/** The pid in a server's pid file (first line), or null while there is none (a restart). */
function pidFrom(path: string): number | null {
  try {
    const pid = Number(Deno.readTextFileSync(path).split("\n")[0].trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

type CpuSample = { pid: number | null; seconds: number };
const sampleServers = (): CpuSample[] =>
  [`${stateDir}/pg/postmaster.pid`, `${stateDir}/dovecot/run/master.pid`].map((path) => {
    const pid = pidFrom(path);
    return { pid, seconds: pid === null ? NaN : treeCpuSeconds(pid) };
  });
/** CPU seconds between two samples; NaN when the server restarted meanwhile (tests stop Dovecot). */
const cpuDelta = (before: CpuSample, after: CpuSample) =>
  before.pid !== null && before.pid === after.pid ? after.seconds - before.seconds : NaN;
const cpuText = (seconds: number) => Number.isNaN(seconds) ? "n/a" : fmt(seconds, 1);

interface Measured extends ChildReport {
  label: string;
  postgres_cpu_s: number;
  dovecot_cpu_s: number;
}

interface ChildOptions {
  /** V8 heap cap in MiB (`--v8-flags=--max-heap-size=`), as the edge runtime caps an isolate. */
  heapMib?: number;
}

/** One child process (bench/import_child.ts), with the servers' CPU over its lifetime. */
async function runChild(
  label: string,
  request: ChildRequest,
  options: ChildOptions = {},
): Promise<Measured> {
  const result = await tryChild(label, request, options);
  if ("failure" in result) throw new Error(`Child "${label}" failed: ${result.failure}`);
  return result;
}

/** runChild, but a child that dies (e.g. V8 out of memory under a cap) is a result, not an error. */
async function tryChild(
  label: string,
  request: ChildRequest,
  options: ChildOptions = {},
): Promise<Measured | { label: string; failure: string }> {
  const before = sampleServers();
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      ...(options.heapMib ? [`--v8-flags=--max-heap-size=${options.heapMib}`] : []),
      `${repo}bench/import_child.ts`,
      JSON.stringify(request),
    ],
    cwd: repo,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const after = sampleServers();
  const text = new TextDecoder().decode(output.stdout).trim();
  const errors = new TextDecoder().decode(output.stderr).trim();
  if (errors) console.error(errors.slice(-4000));
  if (output.code !== 0) {
    const cause = /out of memory|heap limit/i.test(errors)
      ? "V8 ran out of memory"
      : `exited with ${output.code}${output.signal ? ` (${output.signal})` : ""}`;
    return { label, failure: `${cause}: ${(errors || text).split("\n").slice(-3).join(" | ")}` };
  }
  const childReport = JSON.parse(text.split("\n").at(-1)!) as ChildReport;
  return {
    ...childReport,
    label,
    postgres_cpu_s: cpuDelta(before[0], after[0]),
    dovecot_cpu_s: cpuDelta(before[1], after[1]),
  };
}

// --- setup ------------------------------------------------------------------------

interface Target {
  userId: string;
  imapUser: { username: string; password: string };
  mailbox: Mailbox;
  count: number;
  bytes: number;
}

async function seed(
  imapUser: { username: string; password: string },
  count: number,
  method: string,
  messages: Iterable<GeneratedMessage> = mailboxMessages({ from: 0, to: count }, {
    count,
    bigCount: BIG_MESSAGES,
  }),
): Promise<SeedResult> {
  if (method === "imap") return await appendOverImap(imapUser, messages);
  const written = await writeMaildir(imapUser.username, messages);
  const started = performance.now();
  const seen = await openInbox(imapUser); // Dovecot reads the new files and assigns UIDs
  return { ...written, ms: written.ms + performance.now() - started, messages: seen };
}

async function newImapUser() {
  const imapUser = await createImapUser();
  created.imapUsers.push(imapUser.username);
  return imapUser;
}

/**
 * Times both ways of seeding on the same few messages (generated beforehand, no big
 * ones); the faster one seeds the mailboxes.
 */
async function pickSeedMethod(): Promise<string> {
  if (SEED_METHOD !== "auto") return SEED_METHOD;
  const rows = [["seeding calibration", "messages", "MB", "ms", "ms/message"]];
  const times: Record<string, number> = {};
  const messages = [
    ...mailboxMessages({ from: 0, to: CALIBRATION_MESSAGES }, {
      count: CALIBRATION_MESSAGES,
      bigCount: 0,
    }),
  ];
  for (const method of ["imap", "maildir"]) {
    const result = await seed(await newImapUser(), CALIBRATION_MESSAGES, method, messages);
    if (result.messages !== CALIBRATION_MESSAGES) {
      throw new Error(`Seeding by ${method} left ${result.messages} messages`);
    }
    times[method] = result.ms / result.messages;
    rows.push([
      method === "imap" ? "IMAP APPEND, one connection" : "Maildir files + first STATUS",
      fmt(result.messages),
      mb(result.bytes),
      fmt(result.ms),
      fmt(times[method], 2),
    ]);
  }
  report.table(rows);
  const method = times.maildir < times.imap ? "maildir" : "imap";
  console.log(
    `seeding with ${method} (${
      fmt(Math.max(times.imap, times.maildir) / Math.min(times.imap, times.maildir), 1)
    }× faster)`,
  );
  return method;
}

/** A new auth user with a mailbox row for `imapUser` (TLS, the stack's CA, INBOX: the production default). */
async function registerMailbox(
  imapUser: { username: string; password: string },
): Promise<{ userId: string; mailbox: Mailbox }> {
  const userId = await createUser(sql, "bench-import");
  created.authUsers.push(userId);
  await addMailbox(sql, userId, imapUser);
  const [mailbox] = await sql<Mailbox[]>`
    select id, user_id, host, port, tls_mode, username, auth_kind, folders, paused_reason
      from auto_sync.import_targets(${userId}::uuid)`;
  return { userId, mailbox };
}

async function createTarget(count: number, method: string): Promise<Target> {
  const imapUser = await newImapUser();
  const { userId, mailbox } = await registerMailbox(imapUser);
  const seeded = await seed(imapUser, count, method);
  if (seeded.messages !== count) throw new Error(`Seeded ${seeded.messages} of ${count} messages`);
  console.log(
    `${fmt(count)} messages (${BIG_MESSAGES} of 5 MB), ${
      mb(seeded.bytes)
    } MB, generated and seeded by ${method} in ${seconds(seeded.ms)} s`,
  );
  return { userId, imapUser, mailbox, count, bytes: seeded.bytes };
}

// --- 1 & 2: first sync and memory -----------------------------------------------------

const importRequest = (target: Target): ChildRequest => ({
  mode: "import",
  userId: target.userId,
  limits: LIMITS,
  instance: MEASURED_INSTANCE,
});
const rawRequest = (target: Target): ChildRequest => ({
  mode: "raw",
  mailbox: target.mailbox,
  password: target.imapUser.password,
  limits: LIMITS,
});

function checkImport(result: Measured, target: Target): void {
  const details = result.run?.details as { inserted?: number; fetched?: number } | undefined;
  if (result.run?.status !== "succeeded" || details?.inserted !== target.count) {
    throw new Error(
      `Import of ${target.count} messages: status ${result.run?.status}, inserted ${details?.inserted} (${result.run?.error})`,
    );
  }
}

/** Every run but the last ended partial with more to do; the last succeeded; every message inserted once. */
function checkFollowUps(result: Measured, target: Target): void {
  const runs = result.runs ?? [];
  const inserted = runs.reduce((sum, run) => sum + run.inserted, 0);
  const early = runs.slice(0, -1).find((run) => run.status !== "partial" || !run.has_more);
  const last = runs.at(-1);
  if (early || last?.status !== "succeeded" || inserted !== target.count) {
    const bad = early ?? last;
    throw new Error(
      `Follow-up runs of ${target.count} messages: ${runs.length} runs, ${inserted} inserted; ` +
        `a run ended ${bad?.status} (${bad?.error})`,
    );
  }
}

function checkRaw(result: Measured, target: Target): void {
  if (result.fetched !== target.count) {
    throw new Error(`Raw fetch saw ${result.fetched} of ${target.count} messages`);
  }
}

const rate = (result: Measured) => result.fetched / (result.wall_ms / 1000);
/** CPU seconds of the child, Postgres and Dovecot over the child's lifetime (NaN if a server restarted). */
const allCpu = (result: Measured) =>
  result.cpu_s.user + result.cpu_s.system + result.postgres_cpu_s + result.dovecot_cpu_s;
const os = { cores: navigator.hardwareConcurrency };

async function firstSync(small: Target, big: Target) {
  report.section(
    `1/4 first sync of ${fmt(big.count)} messages: importer vs raw IMAP fetch (child processes)`,
  );
  const idle = await runChild("idle", { mode: "idle", limits: LIMITS });
  const smallRaw = await runChild(`raw ${fmt(small.count)}`, rawRequest(small));
  checkRaw(smallRaw, small);
  const smallImport = await runChild(`importer ${fmt(small.count)}`, importRequest(small));
  checkImport(smallImport, small);
  const raw1 = await runChild(`raw ${fmt(big.count)} #1`, rawRequest(big));
  checkRaw(raw1, big);
  const bigImport = await runChild(`importer ${fmt(big.count)}`, importRequest(big));
  checkImport(bigImport, big);
  const raw2 = await runChild(`raw ${fmt(big.count)} #2`, rawRequest(big));
  checkRaw(raw2, big);
  const followUps = await runChild(`importer ${fmt(big.count)}, default budget`, {
    mode: "follow-ups",
    userId: (await registerMailbox(big.imapUser)).userId, // a first import again
    limits: LIMITS,
  });
  checkFollowUps(followUps, big);

  const rows = [[
    "run",
    "messages",
    "wall s",
    "msg/s",
    "MB/s",
    "own CPU s",
    "Postgres CPU s",
    "Dovecot CPU s",
  ]];
  for (const result of [smallRaw, smallImport, raw1, bigImport, raw2, followUps]) {
    rows.push([
      result.label,
      fmt(result.fetched),
      seconds(result.wall_ms),
      fmt(rate(result)),
      fmt(result.source_bytes / MB / (result.wall_ms / 1000), 1),
      fmt(result.cpu_s.user + result.cpu_s.system, 1),
      cpuText(result.postgres_cpu_s),
      cpuText(result.dovecot_cpu_s),
    ]);
  }
  report.table(rows);
  console.log(
    `(MB/s: message bytes received, each cut at ${
      mb(LIMITS.maxMessageBytes, 2)
    } MB; CPU in seconds, Postgres and Dovecot ` +
      "over the child's lifetime, anything else using them meanwhile included)",
  );
  const rawRate = (rate(raw1) + rate(raw2)) / 2;
  const throughputRatio = rate(bigImport) / rawRate;
  const smallRatio = rate(smallImport) / rate(smallRaw);
  console.log(
    `ratio importer/raw, ${fmt(big.count)} messages: ${ratio(throughputRatio)} ` +
      `(raw runs ${fmt(rate(raw1))} and ${fmt(rate(raw2))} msg/s) — ${
        report.goal(RATE_GOAL, throughputRatio)
      }`,
  );
  console.log(`ratio importer/raw, ${fmt(small.count)} messages: ${ratio(smallRatio)}`);
  const chained = rate(followUps) / rawRate;
  const followUpText = `${fmt(followUps.runs!.length)} runs at the default limits (${
    fmt(DEFAULT_LIMITS.maxMessages)
  } messages a run, a fresh instance each, no wait between runs): ${
    seconds(followUps.wall_ms)
  } s, ${fmt(rate(followUps))} msg/s, ${ratio(chained)} raw, ${
    ratio(rate(followUps) / rate(bigImport))
  } the one-run import`;
  console.log(`first import of ${fmt(big.count)} in ${followUpText} (info)`);

  report.section(
    `where the importer's ${seconds(bigImport.wall_ms)} s went (${
      fmt(big.count)
    } messages, one run)`,
  );
  const t = bigImport.timings;
  const parts: [string, number][] = [
    [`FETCH streams (${fmt(t.fetches)}, until drained)`, t.fetch_ms],
    ["to record: postal-mime", t.postal_mime_ms],
    [
      "to record: the rest (htmlToText, cleanText, hash, addresses)",
      t.to_record_ms - t.postal_mime_ms,
    ],
    [`store_batch (${fmt(t.store_batches)}: JSON, round trip, insert)`, t.store_batch_ms],
    [`other SQL (${fmt(t.other_sqls)}: run, claim, credential, state)`, t.other_sql_ms],
  ];
  const accounted = parts.reduce((sum, [, ms]) => sum + ms, 0);
  parts.push([
    "connect, login, STATUS, EXAMINE, SEARCH, logout, other",
    bigImport.wall_ms - accounted,
  ]);
  const breakdown = [["part", "s", "share", "ms/message"]];
  for (const [name, ms] of parts) {
    breakdown.push([
      name,
      seconds(ms),
      `${fmt((100 * ms) / bigImport.wall_ms)}%`,
      fmt(ms / big.count, 2),
    ]);
  }
  breakdown.push([
    "raw baseline: FETCH streams (mean of 2)",
    seconds((raw1.timings.fetch_ms + raw2.timings.fetch_ms) / 2),
    "",
    fmt((raw1.timings.fetch_ms + raw2.timings.fetch_ms) / 2 / big.count, 2),
  ]);
  report.table(breakdown);
  console.log(
    `CPU: importer process ${fmt(bigImport.cpu_s.user + bigImport.cpu_s.system, 1)} s, raw ${
      fmt((raw1.cpu_s.user + raw1.cpu_s.system + raw2.cpu_s.user + raw2.cpu_s.system) / 2, 1)
    } s; Postgres ${cpuText(bigImport.postgres_cpu_s)} s during the import (${
      cpuText(bigImport.postgres_cpu_s * 1000 / big.count)
    } ms of Postgres CPU per message)`,
  );

  report.section(
    "2/4 memory of each child process, uncapped: heap used + external (what the edge runtime counts), RSS beside",
  );
  printMemoryTable([idle, smallRaw, raw1, raw2, smallImport, bigImport]);
  const growth = bigImport.memory.peak_counted / smallImport.memory.peak_counted;
  console.log(
    `importer peak heap+external ${fmt(big.count)}/${fmt(small.count)}: ${ratio(growth)} — ${
      report.goal(GROWTH_GOAL, growth)
    } (memory must not grow with the mailbox). Uncapped, V8 lets garbage pile up to its own ` +
      "limits: the capped runs in 3/4 are what the platform would see.",
  );

  report.summary(
    `import first sync of ${fmt(big.count)} msgs: importer ${
      fmt(rate(bigImport))
    } msg/s, raw IMAP fetch ${fmt(rawRate)} msg/s, ` +
      `ratio ${ratio(throughputRatio)} (${report.goal(RATE_GOAL, throughputRatio)}); ` +
      `postal-mime ${fmt((100 * t.postal_mime_ms) / bigImport.wall_ms)}% of its time, store_batch ${
        fmt((100 * t.store_batch_ms) / bigImport.wall_ms)
      }%, FETCH ${fmt((100 * t.fetch_ms) / bigImport.wall_ms)}%`,
  );
  report.summary(
    `import first sync of ${
      fmt(big.count)
    } msgs in ${followUpText} (info; pg_cron waits between runs not included)`,
  );
  report.summary(
    `import memory, uncapped: peak heap+external ${mib(smallImport.memory.peak_counted)} MiB (${
      fmt(small.count)
    } msgs), ${mib(bigImport.memory.peak_counted)} MiB (${fmt(big.count)}), ratio ${
      ratio(growth)
    } (${report.goal(GROWTH_GOAL, growth)}); peak RSS ${
      mb(bigImport.memory.vm_hwm, 0)
    } MB (raw fetch ${mb(Math.max(raw1.memory.vm_hwm, raw2.memory.vm_hwm), 0)} MB, idle child ${
      mb(idle.memory.vm_hwm, 0)
    } MB)`,
  );
  return { raw1, raw2 };
}

// --- 4: memory as the platform counts it, heap capped ------------------------------------

const SHARED_HEAP_MIB = 256; // the edge runtime's memory limit per isolate
const SMALL_HEAP_MIB = 64;

type Attempt = Measured | { label: string; failure: string };
const failed = (attempt: Attempt): attempt is { label: string; failure: string } =>
  "failure" in attempt;

/** Why an import attempt does not count as completed, or null when it does. */
function importProblem(attempt: Attempt, expected: number, limitBytes?: number): string | null {
  if (failed(attempt)) return attempt.failure;
  const runs = attempt.runs ?? [{
    status: attempt.run?.status ?? "?",
    error: attempt.run?.error ?? null,
    inserted: Number((attempt.run?.details as { inserted?: number } | undefined)?.inserted ?? 0),
  }];
  const bad = runs.find((run) => run.status !== "succeeded" || run.inserted !== expected);
  if (bad) return `a run ended ${bad.status} with ${bad.inserted} inserted (${bad.error})`;
  if (limitBytes !== undefined && attempt.memory.peak_counted > limitBytes) {
    return `heap+external peaked at ${mib(attempt.memory.peak_counted)} MiB, over the platform's ${
      mib(limitBytes)
    } MiB`;
  }
  return null;
}

/**
 * Four users' first imports of the big mailbox at once in one process with the heap
 * capped at 256 MiB, against four raw fetches side by side under the same cap (raw,
 * four imports, raw); then one import with the heap capped at 64 MiB against one raw
 * fetch under the same cap (raw, import, raw). Every import is a first import: each
 * has a fresh auth user. The four mailboxes are four Dovecot users with the same
 * messages (hard links, bench/import_mail.ts linkMaildir).
 */
async function platformMemory(big: Target) {
  report.section(
    `3/4 memory as the edge runtime counts it (heap used + external), heap capped: ` +
      `${CONCURRENT_IMPORTS} first imports of ${
        fmt(big.count)
      } at once under ${SHARED_HEAP_MIB} MiB, ` +
      `one under ${SMALL_HEAP_MIB} MiB`,
  );
  const accounts = [{ imapUser: big.imapUser, mailbox: big.mailbox }];
  for (let i = 1; i < CONCURRENT_IMPORTS; i++) {
    const imapUser = await newImapUser();
    const linked = await linkMaildir(big.imapUser.username, imapUser.username);
    const seen = await openInbox(imapUser);
    const warmed = await warmUp(imapUser);
    if (linked.messages !== big.count || seen !== big.count || warmed !== big.count) {
      throw new Error(
        `Linked mailbox ${i}: ${linked.messages} files, ${seen} seen, ${warmed} warmed`,
      );
    }
    accounts.push({ imapUser, mailbox: (await registerMailbox(imapUser)).mailbox });
  }
  const raws: ChildRequest = {
    mode: "raws",
    targets: accounts.map((a) => ({ mailbox: a.mailbox, password: a.imapUser.password })),
    limits: LIMITS,
  };
  const freshImports = async (count: number): Promise<ChildRequest> => ({
    mode: "imports",
    userIds: await Promise.all(
      accounts.slice(0, count).map(async (a) => (await registerMailbox(a.imapUser)).userId),
    ),
    limits: LIMITS,
    instance: MEASURED_INSTANCE,
  });
  const shared = { heapMib: SHARED_HEAP_MIB };
  const small = { heapMib: SMALL_HEAP_MIB };
  const n = CONCURRENT_IMPORTS;
  const fourRaw1 = await runChild(`${n} raw at once #1, ${SHARED_HEAP_MIB} MiB`, raws, shared);
  const fourImports = await tryChild(
    `${n} importers at once, ${SHARED_HEAP_MIB} MiB`,
    await freshImports(n),
    shared,
  );
  const fourRaw2 = await runChild(`${n} raw at once #2, ${SHARED_HEAP_MIB} MiB`, raws, shared);
  const oneRaws = { ...raws, targets: raws.targets!.slice(0, 1) };
  const oneRaw1 = await runChild(`raw #1, ${SMALL_HEAP_MIB} MiB`, oneRaws, small);
  const oneImport = await tryChild(
    `importer, ${SMALL_HEAP_MIB} MiB`,
    await freshImports(1),
    small,
  );
  const oneRaw2 = await runChild(`raw #2, ${SMALL_HEAP_MIB} MiB`, oneRaws, small);
  for (const raw of [fourRaw1, fourRaw2]) {
    if (raw.fetched !== n * big.count) throw new Error(`${raw.label} saw ${raw.fetched} messages`);
  }
  for (const raw of [oneRaw1, oneRaw2]) {
    if (raw.fetched !== big.count) throw new Error(`${raw.label} saw ${raw.fetched} messages`);
  }

  const attempts: Attempt[] = [fourRaw1, fourImports, fourRaw2, oneRaw1, oneImport, oneRaw2];
  const rows = [[
    "run",
    "messages",
    "wall s",
    "msg/s (all together)",
    "own CPU s",
    "Postgres CPU s",
    "Dovecot CPU s",
    "CPU of all three, ms/msg",
    "outcome",
  ]];
  for (const attempt of attempts) {
    rows.push(
      failed(attempt)
        ? [attempt.label, "", "", "", "", "", "", "", attempt.failure.slice(0, 120)]
        : [
          attempt.label,
          fmt(attempt.fetched),
          seconds(attempt.wall_ms),
          fmt(rate(attempt)),
          fmt(attempt.cpu_s.user + attempt.cpu_s.system, 1),
          cpuText(attempt.postgres_cpu_s),
          cpuText(attempt.dovecot_cpu_s),
          Number.isNaN(allCpu(attempt))
            ? "n/a"
            : fmt((1000 * allCpu(attempt)) / attempt.fetched, 2),
          "completed",
        ],
    );
  }
  report.table(rows);
  console.log(
    `(${os.cores} cores: when the three processes together keep every core busy, the ` +
      "ratio of msg/s can be no better than the ratio of CPU per message, raw/importer)",
  );
  printMemoryTable(attempts.filter((attempt): attempt is Measured => !failed(attempt)));

  const goal = (
    name: string,
    attempt: Attempt,
    rawRuns: Measured[],
    expected: number,
    limitBytes?: number,
  ) => {
    const problem = importProblem(attempt, expected, limitBytes);
    const rawRate = rawRuns.reduce((sum, raw) => sum + rate(raw), 0) / rawRuns.length;
    const value = failed(attempt) ? NaN : rate(attempt) / rawRate;
    const met = problem === null && report.meets(RATE_GOAL, value);
    const rawCpu = rawRuns.reduce((sum, raw) => sum + allCpu(raw) / raw.fetched, 0) /
      rawRuns.length;
    const cpuNote = failed(attempt)
      ? ""
      : `; CPU of importer + Postgres + Dovecot ${
        fmt((1000 * allCpu(attempt)) / attempt.fetched, 2)
      } ms/msg vs raw + Dovecot ${fmt(1000 * rawCpu, 2)} (${
        ratio(rawCpu / (allCpu(attempt) / attempt.fetched))
      })`;
    const text = `${name}: ${
      failed(attempt) ? "did not complete" : `${fmt(rate(attempt))} msg/s`
    } vs raw ${fmt(rawRate)} msg/s (mean of ${rawRuns.length}), ratio ${
      Number.isNaN(value) ? "n/a" : ratio(value)
    }${
      failed(attempt) ? "" : `, peak heap+external ${mib(attempt.memory.peak_counted)} MiB`
    } — goal: completes${
      limitBytes ? ` within ${mib(limitBytes)} MiB heap+external` : ""
    } at ${RATE_GOAL.op} ${ratio(RATE_GOAL.bound)} raw, ${report.verdict(met)}${
      problem ? ` (${problem})` : ""
    }${cpuNote}`;
    console.log(text);
    report.summary(`import memory, ${text}`);
  };
  goal(
    `${n} first imports of ${fmt(big.count)} at once, heap capped at ${SHARED_HEAP_MIB} MiB`,
    fourImports,
    [fourRaw1, fourRaw2],
    big.count,
    SHARED_HEAP_MIB * MIB,
  );
  goal(
    `1 first import of ${fmt(big.count)}, heap capped at ${SMALL_HEAP_MIB} MiB`,
    oneImport,
    [oneRaw1, oneRaw2],
    big.count,
  );
}

// --- 3: incremental -------------------------------------------------------------------

async function syncOnce(target: Target) {
  const runId = await acceptedRun(sql, target.userId);
  const started = performance.now();
  await importer(sql, LIMITS).runner({ runId, userId: target.userId });
  const ms = performance.now() - started;
  const [run] = await sql`select status, error, details from auto_sync.runs where id = ${runId}`;
  if (run.status !== "succeeded") throw new Error(`Incremental sync: ${run.status} (${run.error})`);
  const commands = (run.details.mailboxes?.[0]?.imap_commands ?? {}) as Record<string, number>;
  return { ms, fetched: Number(run.details.fetched), commands };
}

const commandList = (commands: Record<string, number>) =>
  Object.entries(commands).map(([name, count]) => `${name} ${count}`).join(", ");
const commandTotal = (commands: Record<string, number>) =>
  Object.values(commands).reduce((sum, n) => sum + n, 0);
const mailboxCommands = (commands: Record<string, number>) =>
  ["STATUS", "EXAMINE", "SELECT", "SEARCH", "FETCH"].reduce(
    (sum, name) => sum + (commands[name] ?? 0),
    0,
  );

async function incremental(big: Target) {
  report.section(
    `4/4 incremental sync of ${NEW_MESSAGES} new messages on ${
      fmt(big.count)
    }, vs nothing new (this process, ${ROUNDS} rounds)`,
  );
  await syncOnce(big); // warm-up: modules, JIT, TLS
  const withNew: Awaited<ReturnType<typeof syncOnce>>[] = [];
  const unchanged: Awaited<ReturnType<typeof syncOnce>>[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const sources = Array.from(
      { length: NEW_MESSAGES },
      (_, i) => generateMessage(big.count + round * NEW_MESSAGES + i, { seed: 2 }).source,
    );
    await appendMessages(big.imapUser, "INBOX", sources);
    const sync = await syncOnce(big);
    if (sync.fetched !== NEW_MESSAGES) {
      throw new Error(`Incremental sync fetched ${sync.fetched}, not ${NEW_MESSAGES}`);
    }
    withNew.push(sync);
    const idle = await syncOnce(big);
    if (idle.fetched !== 0 || idle.commands.FETCH || idle.commands.SEARCH) {
      throw new Error(`A sync with nothing new sent ${commandList(idle.commands)}`);
    }
    unchanged.push(idle);
  }
  const [a, b] = [median(withNew.map((s) => s.ms)), median(unchanged.map((s) => s.ms))];
  report.table([
    ["sync", "median ms", "rounds ms", "IMAP commands (one run)", "total", "mailbox commands"],
    [
      `${NEW_MESSAGES} new`,
      fmt(a),
      spread(withNew.map((s) => s.ms)),
      commandList(withNew[0].commands),
      fmt(commandTotal(withNew[0].commands)),
      fmt(mailboxCommands(withNew[0].commands)),
    ],
    [
      "nothing new",
      fmt(b),
      spread(unchanged.map((s) => s.ms)),
      commandList(unchanged[0].commands),
      fmt(commandTotal(unchanged[0].commands)),
      fmt(mailboxCommands(unchanged[0].commands)),
    ],
  ]);
  console.log(
    `ratio ${NEW_MESSAGES} new / nothing new: ${
      ratio(a / b)
    } (wall time; both include TLS connect + login and the run bookkeeping). ` +
      '"mailbox commands": STATUS, EXAMINE/SELECT, SEARCH, FETCH — the rest is connection setup.',
  );
  report.summary(
    `import incremental: ${NEW_MESSAGES} new msgs on ${fmt(big.count)} in ${fmt(a)} ms, ${
      commandTotal(withNew[0].commands)
    } IMAP commands ` +
      `(${mailboxCommands(withNew[0].commands)} for the mailbox); nothing new ${fmt(b)} ms, ${
        commandTotal(unchanged[0].commands)
      } ` +
      `(${mailboxCommands(unchanged[0].commands)}: STATUS); ratio ${ratio(a / b)}`,
  );
}

// --- cleanup --------------------------------------------------------------------------

async function cleanup() {
  if (created.authUsers.length) {
    // Cascades: mailboxes, emails, folder state, runs, credentials and their Vault secrets.
    await sql`delete from public.mailboxes where user_id = any(${created.authUsers}::uuid[])`;
    await sql`delete from auth.users where id = any(${created.authUsers}::uuid[])`;
  }
  for (const username of created.imapUsers) {
    try {
      removeMaildir(username);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        console.error(`Cannot remove the mail of ${username}: ${error}`);
      }
    }
  }
}

const benchStarted = performance.now();
try {
  report.section(`setup: ${fmt(MESSAGES)} and ${fmt(SMALL_MESSAGES)} message mailboxes`);
  const method = await phase("seeding calibration", pickSeedMethod);
  const big = await phase(`seeding ${fmt(MESSAGES)}`, () => createTarget(MESSAGES, method));
  const small = await phase(
    `seeding ${fmt(SMALL_MESSAGES)}`,
    () => createTarget(SMALL_MESSAGES, method),
  );
  await phase("Dovecot warm-up (metadata fetch)", async () => {
    for (const target of [big, small]) {
      const seen = await warmUp(target.imapUser);
      if (seen !== target.count) throw new Error(`Warm-up saw ${seen} of ${target.count} messages`);
    }
  });
  await phase("1/4 + 2/4 first syncs (8 child processes)", () => firstSync(small, big));
  await phase("3/4 memory, heap capped (6 child processes)", () => platformMemory(big));
  await phase("4/4 incremental", () => incremental(big));
} finally {
  await phase("cleanup", cleanup);
  await sql.end();
  report.section(`time: ${seconds(performance.now() - benchStarted)} s in all`);
  report.table([["phase", "s"], ...phases.map(([name, ms]) => [name, seconds(ms)])]);
}
