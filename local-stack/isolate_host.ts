/**
 * The function process's side of the edge runtime's limits (local stack only; the
 * gateway's side and the sources are in isolate_limits.ts). The gateway serves each
 * function instance as
 *
 *   deno serve [the function's flags] local-stack/isolate_host.ts <entrypoint URL> <limits JSON>
 *
 * This module loads the function's entry point and serves its default export, and
 * meanwhile does what the runtime does inside an isolate:
 *   - memory as the runtime counts it, V8 used heap + external memory (not RSS): at
 *     beforeunloadPct of the limit `beforeunload` is dispatched, at the limit the
 *     isolate ends (the runtime terminates it: ShutdownReason::Memory);
 *     each new peak (8 MiB above the last) is logged ("Memory peak"), for the benchmarks;
 *   - SIGUSR2 from the gateway (its wall-clock or CPU supervisor) dispatches
 *     `beforeunload` on globalThis, as the runtime's V8 interrupt does.
 * The function's code sees nothing else: no extra environment variable.
 */
const [entrypoint, limitsJson] = Deno.args;
const limits = JSON.parse(limitsJson) as {
  memoryMb: number;
  beforeunloadPct: number;
  /** The function's name, for the log. */
  name?: string;
};
const memoryLimit = limits.memoryMb * 1024 * 1024;

function report(
  level: "info" | "warn" | "error",
  message: string,
  fields: Record<string, unknown>,
) {
  console.error(JSON.stringify({ level, component: "edge-runtime", message, ...fields }));
}

let beforeunloadDispatched = false;
function dispatchBeforeunload(reason: string) {
  if (beforeunloadDispatched) return;
  beforeunloadDispatched = true;
  report("warn", "Dispatching beforeunload", { reason });
  globalThis.dispatchEvent(new Event("beforeunload"));
}

Deno.addSignalListener("SIGUSR2", () => dispatchBeforeunload("gateway supervisor"));

/** Each new peak, 8 MiB above the last one reported: what the instance used at most. */
const PEAK_STEP = 8 * 1024 * 1024;
let reportedPeak = 0;

setInterval(() => {
  const { heapUsed, external } = Deno.memoryUsage();
  const used = heapUsed + external;
  if (used >= reportedPeak + PEAK_STEP) {
    reportedPeak = used;
    report("info", "Memory peak", {
      function: limits.name,
      pid: Deno.pid,
      counted: used,
      heap_used: heapUsed,
      external,
    });
  }
  if (used >= memoryLimit) {
    report("error", "Memory limit reached: the isolate is terminated", {
      heap_used: heapUsed,
      external,
      limit: memoryLimit,
    });
    Deno.exit(137);
  }
  if (used >= memoryLimit * limits.beforeunloadPct / 100) dispatchBeforeunload("memory");
}, 50);

const served = await import(entrypoint);
export default served.default;
