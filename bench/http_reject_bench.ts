/**
 * Benchmark 2: cron-auto-sync refusing requests over real HTTP.
 *
 * Throughput. Two child processes, both served by `deno serve`:
 *   ours      supabase/functions/cron-auto-sync/index.ts (the real function, a
 *             fresh keyring; SUPABASE_DB_URL points at the stack's database but a
 *             refused request never touches it)
 *   baseline  bench/support/baseline_reject_server.ts: reads the body, answers 401
 * The same in-process load generator (keep-alive fetch, CONCURRENCY requests in
 * flight, ROUND_MS per round) hits each in turn, alternating which goes first,
 * with well-formed requests — right headers, fresh timestamp, dispatch()-shaped
 * claims body — whose signature was made with another key. Report: median req/s of
 * each and the ratio ours/baseline (median of per-round ratios). Goal: >= 0.5×.
 * Also: each server's CPU time per request (from /proc/<pid>/stat), which the load
 * generator sharing the machine does not dilute.
 *
 * Memory. A fresh function process gets 10 MiB bodies: BIG_WITH_LENGTH with
 * Content-Length (several in flight) and BIG_STREAMED streamed without it (chunked).
 * Each must be answered 413; the report is the process's VmRSS / VmHWM (peak RSS)
 * from /proc before and after. Goal: peak < 100 MB. Also reported: the peak RSS of
 * both servers after the throughput rounds (a flood of refusals), side by side.
 *
 *   deno run --allow-all bench/http_reject_bench.ts
 * (--allow-all because Deno grants reads of /proc/<pid>/ only with it)
 */
import { dbUrl } from "../local-stack/urls.ts";
import { generateSecret, parseSecret } from "../functions-shared/wire/standard_webhooks.ts";
import {
  FUNCTION_PERMISSIONS,
  repositoryFunction,
  resolutionFlags,
} from "../local-stack/function_import_map.ts";
import {
  type ChildServer,
  mib,
  type ProbedServer,
  readCpuSeconds,
  readMemory,
  startProbedServer,
  startServer,
} from "./support/child_server.ts";
import type { ProbeMemory } from "./support/memory_probe_server.ts";
import { fmt, median, ratio, spread } from "./support/figures.ts";
import * as report from "./support/report.ts";
import { sizes } from "./support/sizes.ts";
import { buildRequests, webhookHeaders } from "./support/webhook_requests.ts";

const CONCURRENCY = 32;
// Rounds alternate: baseline first in even rounds, ours first in odd ones.
const {
  rounds: ROUNDS,
  roundMs: ROUND_MS,
  warmupMs: WARMUP_MS,
  requestPool: REQUEST_POOL,
  bigWithLength: BIG_WITH_LENGTH,
  bigStreamed: BIG_STREAMED,
  warmupRequests: WARMUP_REQUESTS,
  floodFirst: FLOOD_FIRST,
  floodTotal: FLOOD_TOTAL,
} = sizes.httpReject;
const THROUGHPUT_GOAL = report.atLeast(0.5); // req/s, ours over the bare handler's
const CPU_GOAL = report.atMost(2); // server CPU per refused request, ours over the bare handler's

const BIG_BODY_BYTES = 10 * 1024 * 1024;
const BIG_WITH_LENGTH_IN_FLIGHT = 8;
const BIG_STREAMED_IN_FLIGHT = 4;
const STREAM_CHUNK_BYTES = 64 * 1024;
const MEMORY_GOAL: report.Goal = { op: "<", bound: 100 * 1000 * 1000, shown: "100 MB" }; // peak RSS

const repo = new URL("../", import.meta.url).pathname;
const baselineEntry = `${repo}bench/support/baseline_reject_server.ts`;
const cronAutoSync = repositoryFunction("cron-auto-sync"); // as deploy resolves it

function startFunction(): Promise<ChildServer>;
function startFunction(options: { probe: true }): Promise<ProbedServer>;
function startFunction(options: { probe?: boolean } = {}): Promise<ChildServer> {
  const serverOptions = {
    env: { AUTO_SYNC_SIGNING_SECRETS: `v1,${generateSecret()}`, SUPABASE_DB_URL: dbUrl },
    // the gateway's permissions, and the function's own import map, not the root deno.json
    permissions: [...FUNCTION_PERMISSIONS, ...resolutionFlags(cronAutoSync)],
  };
  return options.probe
    ? startProbedServer("cron-auto-sync", cronAutoSync.entrypoint, serverOptions)
    : startServer("cron-auto-sync", cronAutoSync.entrypoint, serverOptions);
}

function startBaseline(): Promise<ChildServer>;
function startBaseline(options: { probe: true }): Promise<ProbedServer>;
function startBaseline(options: { probe?: boolean } = {}): Promise<ChildServer> {
  const serverOptions = { permissions: FUNCTION_PERMISSIONS };
  return options.probe
    ? startProbedServer("baseline", baselineEntry, serverOptions)
    : startServer("baseline", baselineEntry, serverOptions);
}

/** Well-formed requests with a fresh timestamp, signed with a key the server does not hold. */
function badlySignedRequests(): {
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer>;
}[] {
  const strangerKey = parseSecret(generateSecret());
  return buildRequests([strangerKey], REQUEST_POOL)
    .map((request) => ({ headers: webhookHeaders(request), body: request.body }));
}

interface LoadResult {
  requestsPerSecond: number;
  statuses: Map<number | "error", number>;
}

/** CONCURRENCY workers, each sending one request after another for `ms` (or `total` requests). */
async function generateLoad(url: string, ms: number, total = Infinity): Promise<LoadResult> {
  const requests = badlySignedRequests();
  const statuses = new Map<number | "error", number>();
  const count = (key: number | "error") => statuses.set(key, (statuses.get(key) ?? 0) + 1);
  let next = 0;
  const started = performance.now();
  const deadline = started + ms;
  const worker = async () => {
    while (performance.now() < deadline && next < total) {
      const request = requests[next++ % requests.length];
      try {
        const response = await fetch(url, {
          method: "POST",
          headers: request.headers,
          body: request.body,
        });
        await response.arrayBuffer();
        count(response.status);
      } catch {
        count("error");
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const answered = [...statuses.values()].reduce((sum, n) => sum + n, 0);
  return { requestsPerSecond: answered / ((performance.now() - started) / 1000), statuses };
}

function describeStatuses(statuses: Map<number | "error", number>): string {
  return [...statuses.entries()].map(([status, n]) => `${status}: ${fmt(n)}`).join(", ");
}

interface RoundResult extends LoadResult {
  /** CPU time the server process spent per answered request (user + system), µs. */
  serverCpuMicros: number;
}

/** One round of load on one server, with the server's own CPU time per request. */
async function runRound(server: ChildServer, ms: number): Promise<RoundResult> {
  const cpuBefore = readCpuSeconds(server.pid);
  const result = await generateLoad(server.url, ms);
  const cpu = readCpuSeconds(server.pid) - cpuBefore;
  const answered = [...result.statuses.values()].reduce((sum, n) => sum + n, 0);
  return { ...result, serverCpuMicros: (cpu * 1e6) / answered };
}

interface Series {
  label: string;
  requestsPerSecond: number[];
  serverCpuMicros: number[];
  statuses: Map<number | "error", number>;
}

function newSeries(label: string): Series {
  return { label, requestsPerSecond: [], serverCpuMicros: [], statuses: new Map() };
}

function record(series: Series, result: RoundResult): void {
  series.requestsPerSecond.push(result.requestsPerSecond);
  series.serverCpuMicros.push(result.serverCpuMicros);
  for (const [status, n] of result.statuses) {
    series.statuses.set(status, (series.statuses.get(status) ?? 0) + n);
  }
}

async function measureThroughput(ours: ChildServer, baseline: ChildServer): Promise<void> {
  report.section(
    `rejection throughput: ${CONCURRENCY} concurrent keep-alive requests, ` +
      `${ROUNDS} rounds × ${ROUND_MS} ms each, alternating which server goes first`,
  );
  await generateLoad(baseline.url, WARMUP_MS);
  await generateLoad(ours.url, WARMUP_MS);
  const series = {
    baseline: newSeries("baseline: bare handler, 401"),
    ours: newSeries("ours: cron-auto-sync, bad signature"),
  };
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0
      ? (["baseline", "ours"] as const)
      : (["ours", "baseline"] as const);
    for (const which of order) {
      record(series[which], await runRound(which === "ours" ? ours : baseline, ROUND_MS));
    }
  }
  const perRound = (values: (s: Series) => number[]) =>
    values(series.ours).map((value, round) => value / values(series.baseline)[round]);
  const throughputRatio = median(perRound((s) => s.requestsPerSecond));
  const cpuRatio = median(perRound((s) => s.serverCpuMicros));
  report.table([
    ["server", "median req/s", "rounds min–max", "server CPU µs/request", "answers"],
    ...[series.baseline, series.ours].map((s) => [
      s.label,
      fmt(median(s.requestsPerSecond)),
      spread(s.requestsPerSecond),
      fmt(median(s.serverCpuMicros), 1),
      describeStatuses(s.statuses),
    ]),
  ]);
  console.log(
    `ratio ours/baseline: median of per-round ratios ${ratio(throughputRatio)} ` +
      `(rounds ${spread(perRound((s) => s.requestsPerSecond), 2)}) — ` +
      report.goal(THROUGHPUT_GOAL, throughputRatio),
  );
  console.log(
    `server CPU per refused request, ours/baseline: ${ratio(cpuRatio)} (rounds ${
      spread(perRound((s) => s.serverCpuMicros), 2)
    }) — ${report.goal(CPU_GOAL, cpuRatio)} (the load generator shares the ` +
      "2 cores and costs the same for both, which pulls the req/s ratio towards 1×)",
  );
  const unexpected = [...series.ours.statuses.keys()].filter((status) => status !== 401);
  report.summary(
    `http reject: ours ${fmt(median(series.ours.requestsPerSecond))} req/s, ` +
      `baseline ${fmt(median(series.baseline.requestsPerSecond))} req/s, ratio ${
        ratio(throughputRatio)
      } ` +
      `(${report.goal(THROUGHPUT_GOAL, throughputRatio)}); server CPU per refused request ${
        fmt(median(series.ours.serverCpuMicros), 1)
      } vs ${fmt(median(series.baseline.serverCpuMicros), 1)} µs, ratio ${ratio(cpuRatio)} (${
        report.goal(CPU_GOAL, cpuRatio)
      })`,
  );
  if (unexpected.length > 0) {
    throw new Error(
      `A bad signature was answered other than 401: ${describeStatuses(series.ours.statuses)}`,
    );
  }
}

/** A 10 MiB body sent in chunks, so the request carries no Content-Length. */
function streamedBody(): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(STREAM_CHUNK_BYTES).fill(0x20);
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= BIG_BODY_BYTES) return controller.close();
      controller.enqueue(chunk);
      sent += chunk.byteLength;
    },
  });
}

/** Sends `total` requests, `inFlight` at a time; returns a status (or error) per request. */
async function sendBigBodies(
  url: string,
  total: number,
  inFlight: number,
  makeBody: () => BodyInit,
): Promise<Map<string, number>> {
  const headers = webhookHeaders(buildRequests([parseSecret(generateSecret())], 1)[0]);
  const outcomes = new Map<string, number>();
  let started = 0;
  const worker = async () => {
    while (started < total) {
      started++;
      let outcome: string;
      try {
        const response = await fetch(url, { method: "POST", headers, body: makeBody() });
        await response.arrayBuffer();
        outcome = String(response.status);
      } catch (error) {
        outcome = `error (${(error as Error).message.split("\n")[0].slice(0, 80)})`;
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return outcomes;
}

/**
 * A few refusals one at a time, so the code paths are compiled before "before" is
 * read — few enough not to grow the heap (a flood does: see reportMemoryAfterLoad).
 */
async function warmUp(url: string): Promise<void> {
  for (const request of badlySignedRequests().slice(0, WARMUP_REQUESTS)) {
    const response = await fetch(url, {
      method: "POST",
      headers: request.headers,
      body: request.body,
    });
    await response.arrayBuffer();
  }
}

/** Samples VmRSS every few milliseconds until stopped; returns the highest seen. */
function sampleRss(pid: number): { stop: () => number } {
  let highest = 0;
  const timer = setInterval(() => highest = Math.max(highest, readMemory(pid).rss), 5);
  return { stop: () => (clearInterval(timer), highest) };
}

async function measureMemory(): Promise<void> {
  report.section(
    `memory: ${BIG_WITH_LENGTH} × 10 MiB with Content-Length (${BIG_WITH_LENGTH_IN_FLIGHT} in flight), ` +
      `${BIG_STREAMED} × 10 MiB streamed without it (${BIG_STREAMED_IN_FLIGHT} in flight), fresh function process`,
  );
  const server = await startFunction();
  try {
    await warmUp(server.url);
    const before = readMemory(server.pid);
    const sampler = sampleRss(server.pid);
    const bigBody = new Uint8Array(BIG_BODY_BYTES).fill(0x20);
    const withLength = await sendBigBodies(
      server.url,
      BIG_WITH_LENGTH,
      BIG_WITH_LENGTH_IN_FLIGHT,
      () => bigBody,
    );
    const streamed = await sendBigBodies(
      server.url,
      BIG_STREAMED,
      BIG_STREAMED_IN_FLIGHT,
      streamedBody,
    );
    const sampledPeak = sampler.stop();
    const after = readMemory(server.pid);
    report.table([
      ["function process", "VmRSS", "VmHWM (peak)"],
      [
        `before (after ${WARMUP_REQUESTS} refusals, one at a time)`,
        `${mib(before.rss)} MiB`,
        `${mib(before.hwm)} MiB`,
      ],
      ["after the 10 MiB bodies", `${mib(after.rss)} MiB`, `${mib(after.hwm)} MiB`],
      ["highest VmRSS sampled every 5 ms meanwhile", `${mib(sampledPeak)} MiB`, ""],
    ]);
    console.log(
      `answers, with Content-Length: ${[...withLength].map(([k, n]) => `${k}: ${n}`).join(", ")}`,
    );
    console.log(
      `answers, streamed:            ${[...streamed].map(([k, n]) => `${k}: ${n}`).join(", ")}`,
    );
    const all413 = withLength.get("413") === BIG_WITH_LENGTH &&
      streamed.get("413") === BIG_STREAMED;
    console.log(
      `peak RSS ${mib(after.hwm)} MiB = ${fmt(after.hwm / 1e6, 1)} MB — ${
        report.goal(MEMORY_GOAL, after.hwm)
      }; ` +
        `every big body answered 413: ${all413 ? "yes" : "NO"}`,
    );
    report.summary(
      `http memory: peak RSS ${fmt(before.hwm / 1e6, 1)} MB before, ${
        fmt(after.hwm / 1e6, 1)
      } MB after ` +
        `${BIG_WITH_LENGTH + BIG_STREAMED} × 10 MiB bodies (${
          report.goal(MEMORY_GOAL, after.hwm)
        }); ` +
        `all 413: ${all413 ? "yes" : "NO"}`,
    );
    if (!all413) throw new Error("A 10 MiB body was not answered 413");
  } finally {
    await server.stop();
  }
}

/**
 * Peak RSS of both servers after the throughput rounds, side by side: what a flood
 * of refusals does to the function's memory, against the bare handler's.
 */
function reportMemoryAfterLoad(ours: ChildServer, baseline: ChildServer): void {
  const [oursPeak, baselinePeak] = [readMemory(ours.pid).hwm, readMemory(baseline.pid).hwm];
  console.log(
    `peak RSS after the throughput rounds: ours ${mib(oursPeak)} MiB, baseline ${
      mib(baselinePeak)
    } MiB ` +
      `(${ratio(oursPeak / baselinePeak)})`,
  );
  report.summary(
    `http peak RSS after the throughput rounds (info: RSS is not what the edge runtime counts, ` +
      `see the refusal flood): ours ${fmt(oursPeak / 1e6, 1)} MB, baseline ${
        fmt(baselinePeak / 1e6, 1)
      } MB (${ratio(oursPeak / baselinePeak)})`,
  );
}

// --- memory under a refusal flood, as the edge runtime counts it ---------------------------

const FLOOD_GOAL = report.atMost(1.2); // heap + external after FLOOD_TOTAL over after FLOOD_FIRST
const FLOOD_SAMPLE_MS = 250;

interface FloodResult {
  label: string;
  early: ProbeMemory;
  late: ProbeMemory;
  /** Highest heap used + external sampled during the flood, without forcing a GC. */
  peak: number;
  statuses: Map<number | "error", number>;
}

const counted = (memory: ProbeMemory) => memory.heap_used + memory.external;

/** FLOOD_FIRST refusals, memory after a full GC, then up to FLOOD_TOTAL, memory again. */
async function flood(label: string, server: ProbedServer): Promise<FloodResult> {
  const first = await generateLoad(server.url, Infinity, FLOOD_FIRST);
  const early = await server.memory({ gc: true });
  let peak = counted(early);
  const sampler = setInterval(async () => {
    peak = Math.max(peak, counted(await server.memory().catch(() => early)));
  }, FLOOD_SAMPLE_MS);
  const rest = await generateLoad(server.url, Infinity, FLOOD_TOTAL - FLOOD_FIRST);
  clearInterval(sampler);
  const late = await server.memory({ gc: true });
  const statuses = new Map(first.statuses);
  for (const [status, n] of rest.statuses) statuses.set(status, (statuses.get(status) ?? 0) + n);
  return { label, early, late, peak, statuses };
}

async function measureFlood(): Promise<void> {
  report.section(
    `memory under a refusal flood: heap used + external (as the edge runtime counts it) after ` +
      `${fmt(FLOOD_FIRST)} and after ${fmt(FLOOD_TOTAL)} bad signatures, each after a full GC; ` +
      "fresh processes served by bench/support/memory_probe_server.ts",
  );
  const results: FloodResult[] = [];
  for (
    const [label, start] of [
      ["ours: cron-auto-sync", () => startFunction({ probe: true })],
      ["baseline: bare handler", () => startBaseline({ probe: true })],
    ] as const
  ) {
    const server = await start();
    try {
      results.push(await flood(label, server));
    } finally {
      await server.stop();
    }
  }
  const mbText = (bytes: number) => fmt(bytes / 1e6, 1);
  report.table([
    [
      "server",
      `heap+ext after ${fmt(FLOOD_FIRST)} MB`,
      `after ${fmt(FLOOD_TOTAL)} MB`,
      "ratio",
      "peak sampled, no GC, MB",
      "RSS MB (then)",
      "answers",
    ],
    ...results.map((r) => [
      r.label,
      `${mbText(counted(r.early))} (heap ${mbText(r.early.heap_used)})`,
      `${mbText(counted(r.late))} (heap ${mbText(r.late.heap_used)})`,
      ratio(counted(r.late) / counted(r.early)),
      mbText(r.peak),
      `${mbText(r.early.rss)} → ${mbText(r.late.rss)}`,
      describeStatuses(r.statuses),
    ]),
  ]);
  const ours = results[0];
  const growth = counted(ours.late) / counted(ours.early);
  console.log(
    `ours: heap + external ${fmt(FLOOD_TOTAL)}/${fmt(FLOOD_FIRST)} refusals ${ratio(growth)} — ` +
      `${report.goal(FLOOD_GOAL, growth)}; highest seen without forcing a GC ` +
      `${mbText(ours.peak)} MB (the edge runtime's limit: 256 MB)`,
  );
  if ([...ours.statuses.keys()].some((status) => status !== 401)) {
    throw new Error(
      `A refusal flood answered something other than 401: ${describeStatuses(ours.statuses)}`,
    );
  }
  report.summary(
    `refusal flood memory: heap+external ${mbText(counted(ours.early))} MB after ${
      fmt(FLOOD_FIRST)
    }, ${mbText(counted(ours.late))} MB after ${fmt(FLOOD_TOTAL)} (ratio ${ratio(growth)}, ${
      report.goal(FLOOD_GOAL, growth)
    }); peak without GC ${mbText(ours.peak)} MB; RSS ${mbText(ours.late.rss)} MB`,
  );
}

async function main(): Promise<void> {
  const ours = await startFunction();
  const baseline = await startBaseline().catch(async (error) => {
    await ours.stop();
    throw error;
  });
  try {
    await measureThroughput(ours, baseline);
    reportMemoryAfterLoad(ours, baseline);
  } finally {
    await ours.stop();
    await baseline.stop();
  }
  await measureFlood();
  await measureMemory();
}

await main();
