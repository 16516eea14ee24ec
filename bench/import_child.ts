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
 */
import { ImapFlow } from "imapflow";
import PostalMime from "postal-mime";
import type postgres from "postgres";
import { openImapSession } from "../functions-shared/import_emails/imap_session.ts";
import type { Mailbox } from "../functions-shared/import_emails/mail_store.ts";
import { acceptedRun, caPem, importer } from "../tests/support/imap.ts";
import { connect } from "../tests/support/local_stack.ts";

export interface ChildRequest {
  mode: "import" | "raw" | "idle";
  /** import: the auth user whose mailbox is imported. */
  userId?: string;
  /** raw: the mailbox row (as auto_sync.import_targets gives it) and its password. */
  mailbox?: Mailbox;
  password?: string;
  limits: { maxMessages: number; maxSeconds: number; maxMessageBytes: number; chunkSize: number };
}

export interface ChildMemory {
  vm_hwm: number;
  vm_rss: number;
  heap_used: number;
  heap_total: number;
  external: number;
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

async function runImport(): Promise<Omit<ChildReport, "cpu_s" | "memory" | "mode">> {
  const sql = connect();
  try {
    const userId = request.userId!;
    const runId = await acceptedRun(sql, userId);
    timeFetches();
    timePostalMime();
    const { runner } = importer(timedSql(sql), request.limits);
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

async function runRaw(): Promise<Omit<ChildReport, "cpu_s" | "memory" | "mode">> {
  const { limits } = request;
  timeFetches();
  const started = performance.now();
  const session = await openImapSession(request.mailbox!, request.password!, {
    // As tests/support/imap.ts importer() opens it: the stack's CA, the server on loopback.
    caPem: caPem(),
    allowPrivateHosts: true,
    maxMessageBytes: limits.maxMessageBytes,
  });
  let fetched = 0;
  let bytes = 0;
  try {
    const folder = request.mailbox!.folders[0];
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
  return {
    wall_ms: performance.now() - started,
    fetched,
    source_bytes: bytes,
    timings,
    imap_commands: session.commands,
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
  };
}

/** User and system CPU seconds of this process (all threads), from /proc/self/stat. */
function cpu(): { user: number; system: number } {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

const result = request.mode === "import"
  ? await runImport()
  : request.mode === "raw"
  ? await runRaw()
  : { wall_ms: 0, fetched: 0, source_bytes: 0, timings };
const report: ChildReport = { mode: request.mode, ...result, cpu_s: cpu(), memory: memory() };
console.log(JSON.stringify(report));
