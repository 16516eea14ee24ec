/**
 * One measured import, in a process of its own, for bench/import_bench.ts; prints
 * one JSON line. Its own process so that its peak RSS (VmHWM, read from
 * /proc/self/status just before exit) is that of this one import and nothing else.
 *
 *   deno run --allow-all bench/import_child.ts '<json>'
 *
 * Modes (the json's `mode`):
 *   import  the production importer (tests/support/imap.ts `importer(sql, limits)`:
 *           createImportRunner + the real mail store, run store and IMAP session) for
 *           one accepted run of `userId`. Timing hooks that do not change what runs:
 *           the `sql` handed to it times each query (store_batch apart), FETCH streams
 *           are timed by wrapping ImapFlow.prototype.fetch, postal-mime by wrapping
 *           PostalMime.parse; "to record" is the gap between a chunk's FETCH being
 *           drained and its store_batch starting (postal-mime + the rest of toRecord).
 *   raw     the baseline: the same IMAP session (openImapSession with the options
 *           importer() gives it: same TLS, same CA, loopback allowed), its status,
 *           newUids (EXAMINE, SEARCH UID 1:*) and fetchChunk (the importer's FETCH
 *           query: uid, flags, internalDate, size, bodyStructure, source {start 0,
 *           maxLength}) in chunks of the same size, each chunk drained into an array
 *           and dropped. No parsing, no database.
 *   idle    loads the same modules and does nothing: the runtime's own floor.
 *   imports the production runner for several users at once in this one process (as
 *           signed requests landing in one function instance would), no timing hooks
 *   raws    the raw baseline for several mailboxes at once, side by side
 *   follow-ups  one user's first import as the platform's defaults make it: runs at
 *           the default per-run limits, each in a fresh function instance (the
 *           default instance budget), one after another until a run leaves nothing
 *           for the next; no timing hooks, no wait between runs
 *
 * `import` and `imports` run in one function instance whose budget
 * (functions-shared/import_emails/isolate_budget.ts) is the request's `instance`: the benchmark
 * raises it so that one run imports a whole mailbox and every concurrent run starts
 * at once (see bench/import_bench.ts for why).
 *
 * Every mode samples Deno.memoryUsage() every SAMPLE_MS while it works: the peak of
 * heap used + external is what the edge runtime counts against its memory limit
 * (RSS beside it). Run it with `--v8-flags=--max-heap-size=<MiB>` to cap the heap.
 */
import { ImapFlow } from "imapflow";
import PostalMime from "postal-mime";
import type postgres from "postgres";
import { openImapSession } from "../functions-shared/import_emails/imap_session.ts";
import {
  createIsolateBudget,
  DEFAULT_ISOLATE_BUDGET,
  type IsolateBudget,
} from "../functions-shared/import_emails/isolate_budget.ts";
import type { Mailbox } from "../functions-shared/import_emails/mail_store.ts";
import { acceptedRun, caPem, importer } from "../tests/support/imap.ts";
import { connect } from "../tests/support/local_stack.ts";

export interface RawTarget {
  /** The mailbox row (as auto_sync.import_targets gives it) and its password. */
  mailbox: Mailbox;
  password: string;
}

export interface ChildRequest {
  mode: "import" | "raw" | "idle" | "imports" | "raws" | "follow-ups";
  /** import: the auth user whose mailbox is imported. */
  userId?: string;
  /** imports: the auth users imported at once. */
  userIds?: string[];
  /** raw: the mailbox row (as auto_sync.import_targets gives it) and its password. */
  mailbox?: Mailbox;
  password?: string;
  /** raws: the mailboxes fetched at once. */
  targets?: RawTarget[];
  limits: { maxMessages: number; maxSeconds: number; maxMessageBytes: number; chunkSize: number };
  /** import, imports: the function instance's budget the runs share. */
  instance?: { maxMessages: number; maxConcurrentRuns: number };
}

export interface ChildMemory {
  vm_hwm: number;
  vm_rss: number;
  heap_used: number;
  heap_total: number;
  external: number;
  /** Highest heap used + external sampled while working (what the edge runtime counts). */
  peak_counted: number;
  peak_heap_used: number;
  peak_external: number;
  samples: number;
}

export interface ChildReport {
  mode: ChildRequest["mode"];
  wall_ms: number;
  fetched: number;
  source_bytes: number;
  cpu_s: { user: number; system: number };
  memory: ChildMemory;
  timings: {
    fetch_ms: number;
    fetches: number;
    to_record_ms: number;
    postal_mime_ms: number;
    store_batch_ms: number;
    store_batches: number;
    other_sql_ms: number;
    other_sqls: number;
  };
  run?: { status: string; error: string | null; details: Record<string, unknown> };
  /** imports, follow-ups: each run's outcome, in order. */
  runs?: { status: string; error: string | null; inserted: number; has_more: boolean }[];
  imap_commands?: Record<string, number>;
}

const request: ChildRequest = JSON.parse(Deno.args[0] ?? "{}");

const timings: ChildReport["timings"] = {
  fetch_ms: 0,
  fetches: 0,
  to_record_ms: 0,
  postal_mime_ms: 0,
  store_batch_ms: 0,
  store_batches: 0,
  other_sql_ms: 0,
  other_sqls: 0,
};
let lastFetchEnd = 0;

/** Times every FETCH stream from its start until it is drained. */
function timeFetches() {
  const original = ImapFlow.prototype.fetch;
  ImapFlow.prototype.fetch = async function* (
    this: ImapFlow,
    ...args: Parameters<ImapFlow["fetch"]>
  ) {
    const started = performance.now();
    try {
      yield* original.apply(this, args);
    } finally {
      lastFetchEnd = performance.now();
      timings.fetch_ms += lastFetchEnd - started;
      timings.fetches++;
    }
  } as ImapFlow["fetch"];
}

/** Times postal-mime itself (the rest of toRecord shows in to_record_ms). */
function timePostalMime() {
  const original = PostalMime.parse.bind(PostalMime);
  PostalMime.parse = async (...args: Parameters<typeof PostalMime.parse>) => {
    const started = performance.now();
    try {
      return await original(...args);
    } finally {
      timings.postal_mime_ms += performance.now() - started;
    }
  };
}

/**
 * The same `sql`, but each query (tagged template or `sql.unsafe`) is timed from
 * when it is issued (the stores await it at once) until its result is back:
 * serialising the parameters, the round trip and Postgres's work. Helpers
 * (sql.json...) pass through.
 */
function timedSql(sql: postgres.Sql): postgres.Sql {
  const timed = (text: string, query: Promise<unknown>) => {
    const isBatch = text.includes("auto_sync.store_batch(");
    const started = performance.now();
    if (isBatch && lastFetchEnd > 0) {
      timings.to_record_ms += started - lastFetchEnd;
      lastFetchEnd = 0;
    }
    return query.then((rows) => {
      const elapsed = performance.now() - started;
      if (isBatch) {
        timings.store_batch_ms += elapsed;
        timings.store_batches++;
      } else {
        timings.other_sql_ms += elapsed;
        timings.other_sqls++;
      }
      return rows;
    });
  };
  return new Proxy(sql, {
    apply(target, thisArg, args) {
      const query = Reflect.apply(target, thisArg, args);
      const strings = args[0];
      if (!Array.isArray(strings) || !("raw" in strings)) return query;
      return timed(strings.join("?"), query);
    },
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (property !== "unsafe") return value;
      return (text: string, ...rest: unknown[]) =>
        timed(
          text,
          (value as (...args: unknown[]) => Promise<unknown>).call(target, text, ...rest),
        );
    },
  });
}

/** One function instance with the budget the request gives, started now. */
function measuredInstance(): IsolateBudget {
  if (!request.instance) throw new Error(`Mode "${request.mode}" needs an instance budget`);
  return createIsolateBudget({
    ...DEFAULT_ISOLATE_BUDGET,
    ...request.instance,
    startedAt: Date.now(),
  });
}

type RunRow = { status: string; error: string | null; details: Record<string, unknown> | null };
const runOutcome = (run: RunRow) => ({
  status: run.status,
  error: run.error,
  inserted: Number(run.details?.inserted ?? 0),
  has_more: run.details?.has_more === true,
});

async function runImport(): Promise<Omit<ChildReport, "cpu_s" | "memory" | "mode">> {
  const sql = connect();
  try {
    const userId = request.userId!;
    const runId = await acceptedRun(sql, userId);
    timeFetches();
    timePostalMime();
    const { runner } = importer(timedSql(sql), request.limits, { isolate: measuredInstance() });
    const started = performance.now();
    await runner({ runId, userId });
    const wall = performance.now() - started;
    const [run] = await sql`select status, error, details from auto_sync.runs where id = ${runId}`;
    const details = run.details ?? {};
    return {
      wall_ms: wall,
      fetched: Number(details.fetched ?? 0),
      source_bytes: Number(details.bytes ?? 0),
      timings,
      run: { status: run.status, error: run.error, details },
      imap_commands: details.mailboxes?.[0]?.imap_commands,
    };
  } finally {
    await sql.end();
  }
}

/** The raw baseline for one mailbox: the importer's IMAP session and FETCH query, nothing else. */
async function rawFetch(mailbox: Mailbox, password: string) {
  const { limits } = request;
  const session = await openImapSession(mailbox, password, {
    // As tests/support/imap.ts importer() opens it: the stack's CA, the server on loopback.
    caPem: caPem(),
    allowPrivateHosts: true,
    maxMessageBytes: limits.maxMessageBytes,
  });
  let fetched = 0;
  let bytes = 0;
  try {
    const folder = mailbox.folders[0];
    await session.status(folder);
    const found = await session.newUids(folder, 0);
    const uids = found.uids.slice(0, limits.maxMessages);
    for (let offset = 0; offset < uids.length; offset += limits.chunkSize) {
      const messages = await session.fetchChunk(
        folder,
        uids.slice(offset, offset + limits.chunkSize),
      );
      fetched += messages.length;
      for (const message of messages) bytes += message.source.length;
    }
  } finally {
    await session.close();
  }
  return { fetched, bytes, commands: session.commands };
}

async function runRaw(): Promise<Omit<ChildReport, "cpu_s" | "memory" | "mode">> {
  timeFetches();
  const started = performance.now();
  const result = await rawFetch(request.mailbox!, request.password!);
  return {
    wall_ms: performance.now() - started,
    fetched: result.fetched,
    source_bytes: result.bytes,
    timings,
    imap_commands: result.commands,
  };
}

const SAMPLE_MS = 10;
const peaks = { counted: 0, heapUsed: 0, external: 0, samples: 0 };
function sampleMemory() {
  const usage = Deno.memoryUsage();
  peaks.counted = Math.max(peaks.counted, usage.heapUsed + usage.external);
  peaks.heapUsed = Math.max(peaks.heapUsed, usage.heapUsed);
  peaks.external = Math.max(peaks.external, usage.external);
  peaks.samples++;
}

async function runImports(): Promise<Omit<ChildReport, "cpu_s" | "memory" | "mode">> {
  const sql = connect();
  try {
    const userIds = request.userIds!;
    const runIds = await Promise.all(userIds.map((userId) => acceptedRun(sql, userId)));
    const { runner } = importer(sql, request.limits, { isolate: measuredInstance() });
    const started = performance.now();
    await Promise.all(userIds.map((userId, i) => runner({ runId: runIds[i], userId })));
    const wall = performance.now() - started;
    const rows = await sql`
      select status, error, details from auto_sync.runs where id = any(${runIds}::uuid[])`;
    const runs = rows.map((run) => runOutcome(run as unknown as RunRow));
    return {
      wall_ms: wall,
      fetched: rows.reduce((sum, run) => sum + Number(run.details?.fetched ?? 0), 0),
      source_bytes: rows.reduce((sum, run) => sum + Number(run.details?.bytes ?? 0), 0),
      timings,
      runs,
    };
  } finally {
    await sql.end();
  }
}

/** Gives up after this many runs: a loop that never ends is a failure, not a figure. */
const MAX_FOLLOW_UPS = 1_000;

async function runFollowUps(): Promise<Omit<ChildReport, "cpu_s" | "memory" | "mode">> {
  const sql = connect();
  try {
    const userId = request.userId!;
    const runs: ReturnType<typeof runOutcome>[] = [];
    let fetched = 0;
    let bytes = 0;
    const started = performance.now();
    do {
      const runId = await acceptedRun(sql, userId);
      // A fresh runner: each run in a new instance with the default budget and limits.
      await importer(sql).runner({ runId, userId });
      const [run] = await sql<RunRow[]>`
        select status, error, details from auto_sync.runs where id = ${runId}`;
      runs.push(runOutcome(run));
      fetched += Number(run.details?.fetched ?? 0);
      bytes += Number(run.details?.bytes ?? 0);
    } while (
      runs.at(-1)!.status === "partial" && runs.at(-1)!.has_more && runs.length < MAX_FOLLOW_UPS
    );
    return {
      wall_ms: performance.now() - started,
      fetched,
      source_bytes: bytes,
      timings,
      runs,
    };
  } finally {
    await sql.end();
  }
}

async function runRaws(): Promise<Omit<ChildReport, "cpu_s" | "memory" | "mode">> {
  const started = performance.now();
  const results = await Promise.all(
    request.targets!.map((target) => rawFetch(target.mailbox, target.password)),
  );
  return {
    wall_ms: performance.now() - started,
    fetched: results.reduce((sum, r) => sum + r.fetched, 0),
    source_bytes: results.reduce((sum, r) => sum + r.bytes, 0),
    timings,
  };
}

/** VmHWM / VmRSS from /proc/self/status, and V8's view. */
function memory(): ChildMemory {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kib = (field: string) =>
    Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN) * 1024;
  const usage = Deno.memoryUsage();
  return {
    vm_hwm: kib("VmHWM"),
    vm_rss: kib("VmRSS"),
    heap_used: usage.heapUsed,
    heap_total: usage.heapTotal,
    external: usage.external,
    peak_counted: peaks.counted,
    peak_heap_used: peaks.heapUsed,
    peak_external: peaks.external,
    samples: peaks.samples,
  };
}

/** User and system CPU seconds of this process (all threads), from /proc/self/stat. */
function cpu(): { user: number; system: number } {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

const modes = {
  import: runImport,
  raw: runRaw,
  imports: runImports,
  raws: runRaws,
  "follow-ups": runFollowUps,
};
const sampler = setInterval(sampleMemory, SAMPLE_MS);
sampleMemory();
const result = request.mode === "idle"
  ? { wall_ms: 0, fetched: 0, source_bytes: 0, timings }
  : await modes[request.mode]();
sampleMemory();
clearInterval(sampler);
const report: ChildReport = { mode: request.mode, ...result, cpu_s: cpu(), memory: memory() };
console.log(JSON.stringify(report));
