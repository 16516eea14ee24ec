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
 *                maxSeconds 3,600), the default chunk size and the 1 MiB byte bound
 *      raw       the same IMAP session, the same FETCH query (uid, flags,
 *                internalDate, size, bodyStructure, source {start 0, maxLength
 *                1 MiB}) in the same chunks, each fully drained: no parsing, no DB
 *    Order raw, importer, raw on the big mailbox; report msg/s of each and the ratio
 *    importer / mean of the two raw runs. Goal: >= 0.5×. With it: where the
 *    importer's time goes (FETCH streams, postal-mime and the rest of toRecord,
 *    store_batch), its CPU, and the CPU Postgres and Dovecot spent meanwhile.
 * 2. Memory. Each child reads its own VmHWM (peak RSS) from /proc/self/status just
 *    before exit: importer and raw on the small and on the big mailbox, and an idle
 *    child (same modules, no work). Goal: importer <= 200 MB on both and
 *    big/small <= 1.5× (peak RSS must not grow with the mailbox).
 * 3. Incremental sync, in this process: append 10 new messages to the big mailbox,
 *    import (STATUS, EXAMINE, SEARCH, one FETCH), then import with nothing new
 *    (STATUS only), ROUNDS times; median wall time of each, their ratio, and the
 *    IMAP commands each sent (details.mailboxes[0].imap_commands).
 *
 * Figures only, no pass/fail on timings; it fails when something is wrong (a run
 * not succeeded, a message not imported). Everything it created is deleted at the
 * end: the auth users (their mailboxes, emails, runs and Vault secrets cascade) and
 * the Dovecot users' mail directories.
 *
 *   deno run --allow-all bench/import_bench.ts [--messages 10000] [--seed imap|maildir] [--chunk 10]
 * (--allow-all: it reads /proc, chowns Maildir files, runs child processes)
 */
import { DEFAULT_LIMITS } from "../functions-shared/import_emails/import_run.ts";
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
  openInbox,
  removeMaildir,
  type SeedResult,
  warmUp,
  writeMaildir,
} from "./import_mail.ts";
import { type GeneratedMessage, generateMessage, mailboxMessages } from "./mail_corpus.ts";
import {
  fmt,
  goalNote,
  median,
  printTable,
  ratio,
  section,
  spread,
  summary,
} from "./support/report.ts";

function flag(name: string): string | undefined {
  const index = Deno.args.indexOf(`--${name}`);
  return index >= 0 ? Deno.args[index + 1] : undefined;
}

const MESSAGES = Number(flag("messages") ?? 10_000);
const SMALL_MESSAGES = Math.max(10, Math.round(MESSAGES / 10));
const BIG_MESSAGES = 5;
const SEED_METHOD = flag("seed") ?? "auto";
const CALIBRATION_MESSAGES = 200;
const NEW_MESSAGES = 10;
const ROUNDS = 5;
const MB = 1000 * 1000;
const RSS_GOAL = 200 * MB;
const LIMITS: ChildRequest["limits"] = {
  maxMessages: Math.max(20_000, MESSAGES),
  maxSeconds: 3_600,
  maxMessageBytes: DEFAULT_LIMITS.maxMessageBytes,
  chunkSize: Number(flag("chunk") ?? DEFAULT_LIMITS.chunkSize),
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

/** One child process (bench/import_child.ts), with the servers' CPU over its lifetime. */
async function runChild(label: string, request: ChildRequest): Promise<Measured> {
  const before = sampleServers();
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${repo}bench/import_child.ts`, JSON.stringify(request)],
    cwd: repo,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const after = sampleServers();
  const text = new TextDecoder().decode(output.stdout).trim();
  if (output.code !== 0) {
    throw new Error(`Child "${label}" exited with ${output.code}: ${text.slice(-2000)}`);
  }
  const report = JSON.parse(text.split("\n").at(-1)!) as ChildReport;
  return {
    ...report,
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
  printTable(rows);
  const method = times.maildir < times.imap ? "maildir" : "imap";
  console.log(
    `seeding with ${method} (${
      fmt(Math.max(times.imap, times.maildir) / Math.min(times.imap, times.maildir), 1)
    }× faster)`,
  );
  return method;
}

async function createTarget(count: number, method: string): Promise<Target> {
  const userId = await createUser(sql, "bench-import");
  created.authUsers.push(userId);
  const imapUser = await newImapUser();
  await addMailbox(sql, userId, imapUser); // TLS on the stack's IMAPS port with the stack's CA, INBOX: the production default
  const seeded = await seed(imapUser, count, method);
  if (seeded.messages !== count) throw new Error(`Seeded ${seeded.messages} of ${count} messages`);
  const [mailbox] = await sql<Mailbox[]>`
    select id, user_id, host, port, tls_mode, username, auth_kind, folders, paused_reason
      from auto_sync.import_targets(${userId}::uuid)`;
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

function checkRaw(result: Measured, target: Target): void {
  if (result.fetched !== target.count) {
    throw new Error(`Raw fetch saw ${result.fetched} of ${target.count} messages`);
  }
}

const rate = (result: Measured) => result.fetched / (result.wall_ms / 1000);

async function firstSync(small: Target, big: Target) {
  section(
    `1/3 first sync of ${fmt(big.count)} messages: importer vs raw IMAP fetch (child processes)`,
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
  for (const result of [smallRaw, smallImport, raw1, bigImport, raw2]) {
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
  printTable(rows);
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
      `(raw runs ${fmt(rate(raw1))} and ${fmt(rate(raw2))} msg/s) — goal >= 0.50×, ${
        goalNote(throughputRatio >= 0.5)
      }`,
  );
  console.log(`ratio importer/raw, ${fmt(small.count)} messages: ${ratio(smallRatio)}`);

  section(
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
  printTable(breakdown);
  console.log(
    `CPU: importer process ${fmt(bigImport.cpu_s.user + bigImport.cpu_s.system, 1)} s, raw ${
      fmt((raw1.cpu_s.user + raw1.cpu_s.system + raw2.cpu_s.user + raw2.cpu_s.system) / 2, 1)
    } s; Postgres ${cpuText(bigImport.postgres_cpu_s)} s during the import (${
      cpuText(bigImport.postgres_cpu_s * 1000 / big.count)
    } ms of Postgres CPU per message)`,
  );

  section("2/3 memory: peak RSS (VmHWM) of each child process");
  const memoryRows = [[
    "child",
    "messages",
    "VmHWM MB",
    "VmRSS at end MB",
    "V8 heap total MB",
    "external MB",
  ]];
  for (const result of [idle, smallRaw, raw1, raw2, smallImport, bigImport]) {
    memoryRows.push([
      result.label,
      fmt(result.fetched),
      mb(result.memory.vm_hwm),
      mb(result.memory.vm_rss),
      mb(result.memory.heap_total),
      mb(result.memory.external),
    ]);
  }
  printTable(memoryRows);
  const growth = bigImport.memory.vm_hwm / smallImport.memory.vm_hwm;
  const rawGrowth = Math.max(raw1.memory.vm_hwm, raw2.memory.vm_hwm) / smallRaw.memory.vm_hwm;
  const rssMet = bigImport.memory.vm_hwm <= RSS_GOAL && smallImport.memory.vm_hwm <= RSS_GOAL;
  console.log(
    `importer peak RSS ${fmt(big.count)}/${fmt(small.count)}: ${ratio(growth)} — goal <= 1.50×, ${
      goalNote(growth <= 1.5)
    }; ` +
      `both <= 200 MB: ${goalNote(rssMet)}. Raw fetch ${fmt(big.count)}/${fmt(small.count)}: ${
        ratio(rawGrowth)
      }; ` +
      `importer/raw at ${fmt(big.count)}: ${
        ratio(bigImport.memory.vm_hwm / Math.max(raw1.memory.vm_hwm, raw2.memory.vm_hwm))
      }`,
  );

  summary(
    `import first sync of ${fmt(big.count)} msgs: importer ${
      fmt(rate(bigImport))
    } msg/s, raw IMAP fetch ${fmt(rawRate)} msg/s, ` +
      `ratio ${ratio(throughputRatio)} (goal >= 0.50×, ${goalNote(throughputRatio >= 0.5)}); ` +
      `postal-mime ${fmt((100 * t.postal_mime_ms) / bigImport.wall_ms)}% of its time, store_batch ${
        fmt((100 * t.store_batch_ms) / bigImport.wall_ms)
      }%, FETCH ${fmt((100 * t.fetch_ms) / bigImport.wall_ms)}%`,
  );
  summary(
    `import peak RSS: ${mb(smallImport.memory.vm_hwm, 0)} MB (${fmt(small.count)} msgs), ${
      mb(bigImport.memory.vm_hwm, 0)
    } MB (${fmt(big.count)}), ratio ${ratio(growth)} (goal <= 1.50× and <= 200 MB: ${
      goalNote(growth <= 1.5 && rssMet)
    }); ` +
      `raw fetch ${mb(smallRaw.memory.vm_hwm, 0)} / ${
        mb(Math.max(raw1.memory.vm_hwm, raw2.memory.vm_hwm), 0)
      } MB, idle child ${mb(idle.memory.vm_hwm, 0)} MB`,
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
  section(
    `3/3 incremental sync of ${NEW_MESSAGES} new messages on ${
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
  printTable([
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
  summary(
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
  section(`setup: ${fmt(MESSAGES)} and ${fmt(SMALL_MESSAGES)} message mailboxes`);
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
  await phase("1/3 + 2/3 first syncs (7 child processes)", () => firstSync(small, big));
  await phase("3/3 incremental", () => incremental(big));
} finally {
  await phase("cleanup", cleanup);
  await sql.end();
  section(`time: ${seconds(performance.now() - benchStarted)} s in all`);
  printTable([["phase", "s"], ...phases.map(([name, ms]) => [name, seconds(ms)])]);
}
