/**
 * The edge runtime's per-isolate limits, emulated for the local stack's functions
 * (the gateway's side; isolate_host.ts is the function process's side). Read from
 * supabase/edge-runtime, crates/base/src/worker/supervisor/strategy_per_worker.rs
 * (`supervise`, the per_worker policy `supabase functions serve` runs):
 *
 *   wall clock  `worker_timeout_ms`, split in two: at half of it the worker is retired
 *               (`early_retire_fn`: it takes no new request, a new worker serves them);
 *               at the end it is terminated (`ShutdownReason::WallClockTime`), however
 *               many requests or waitUntil tasks are still in flight.
 *   CPU         `cpu_time_soft_limit_ms` / `cpu_time_hard_limit_ms`, the isolate
 *               thread's CPU time accumulated over every request and background task it
 *               served (`CPUUsage { accumulated }`): soft retires it, hard terminates it
 *               (`ShutdownReason::CPUTime`).
 *   memory      `memory_limit_mb`, counted as V8 used heap + external memory
 *               (supervisor/mod.rs `WorkerMemoryUsed { total: used_heap_size +
 *               external_memory }`); reached: terminated (`ShutdownReason::Memory`).
 *   beforeunload  dispatched at a share of each limit before it ends the isolate
 *               (`create_wall_clock_beforeunload_alert`, `beforeunload_cpu_pct`,
 *               `beforeunload_memory_pct`; edge-runtime flags
 *               `--dispatch-beforeunload-{wall-clock,cpu,memory}-ratio`).
 *
 * Values: supabase/cli internal/functions/serve/templates/main.ts creates every user
 * worker with memoryLimitMb 256, cpuTimeSoftLimitMs 1000, cpuTimeHardLimitMs 2000 and
 * workerTimeoutMs 400 s (SUPABASE_INTERNAL_WALLCLOCK_LIMIT_SEC); hosted Supabase's wall
 * clock is 150 s on the free plan, 400 s on paid ones (docs: functions/limits). The
 * beforeunload share hosted uses is not published; 90 % is what edge-runtime's own
 * integration tests use.
 *
 * Each limit can be set for the gateway by a flag or an environment variable, so a test
 * can make them small: --wall-clock-ms / STACK_FUNCTION_WALL_CLOCK_MS, --cpu-soft-ms /
 * STACK_FUNCTION_CPU_SOFT_MS, --cpu-hard-ms / STACK_FUNCTION_CPU_HARD_MS, --memory-mb /
 * STACK_FUNCTION_MEMORY_MB, --beforeunload-pct / STACK_FUNCTION_BEFOREUNLOAD_PCT.
 */
import type { ProjectMode } from "./project.ts";

export interface IsolateLimits {
  wallClockMs: number;
  cpuSoftMs: number;
  cpuHardMs: number;
  memoryMb: number;
  /** Share of each limit (percent) at which `beforeunload` is dispatched. */
  beforeunloadPct: number;
}

/** Hosted Supabase, free plan. */
export const PLATFORM_LIMITS: IsolateLimits = {
  wallClockMs: 150_000,
  cpuSoftMs: 1_000,
  cpuHardMs: 2_000,
  memoryMb: 256,
  beforeunloadPct: 90,
};

/**
 * Self-hosted (docker compose): the `main` router creates every worker with
 * `memoryLimitMb = 150` and `workerTimeoutMs = 1 * 60 * 1000` (supabase/supabase
 * docker/volumes/functions/main/index.ts; docs self-hosting/self-hosted-functions). It
 * sets no CPU limits; the runtime's default for them is not confirmed here, so the
 * hosted ones are kept.
 */
export const SELF_HOSTED_LIMITS: IsolateLimits = {
  ...PLATFORM_LIMITS,
  wallClockMs: 60_000,
  memoryMb: 150,
};

const SETTINGS: [keyof IsolateLimits, string, string][] = [
  ["wallClockMs", "wall-clock-ms", "STACK_FUNCTION_WALL_CLOCK_MS"],
  ["cpuSoftMs", "cpu-soft-ms", "STACK_FUNCTION_CPU_SOFT_MS"],
  ["cpuHardMs", "cpu-hard-ms", "STACK_FUNCTION_CPU_HARD_MS"],
  ["memoryMb", "memory-mb", "STACK_FUNCTION_MEMORY_MB"],
  ["beforeunloadPct", "beforeunload-pct", "STACK_FUNCTION_BEFOREUNLOAD_PCT"],
];

/** The gateway's flags for the limits (parseArgs options). */
export const LIMIT_FLAGS = Object.fromEntries(
  SETTINGS.map(([, flag]) => [flag, { type: "string" as const }]),
);

/** Limits from the gateway's flags, else its environment, else the project mode's values. */
export function isolateLimits(
  flags: Record<string, unknown>,
  env: Record<string, string | undefined>,
  mode: ProjectMode = "hosted-asymmetric",
): IsolateLimits {
  const limits = { ...(mode === "self-hosted" ? SELF_HOSTED_LIMITS : PLATFORM_LIMITS) };
  for (const [key, flag, variable] of SETTINGS) {
    const text = (flags[flag] as string | undefined) ?? env[variable];
    if (text === undefined || text === "") continue;
    if (!/^[1-9][0-9]{0,8}$/.test(text)) {
      throw new Error(`Invalid --${flag} / ${variable} "${text}": expected a positive integer`);
    }
    limits[key] = Number(text);
  }
  if (limits.cpuSoftMs > limits.cpuHardMs) {
    throw new Error(
      `Invalid CPU limits: soft "${limits.cpuSoftMs}" above hard "${limits.cpuHardMs}"`,
    );
  }
  if (limits.beforeunloadPct > 100) {
    throw new Error(`Invalid beforeunload share "${limits.beforeunloadPct}": at most 100`);
  }
  return limits;
}

/** What the supervisor decided at one look at an isolate. */
export type IsolateVerdict =
  | { action: "none" }
  | { action: "retire"; reason: "wall clock half-life" | "CPU soft limit" }
  | { action: "beforeunload"; reason: "wall clock" | "CPU" }
  | { action: "terminate"; reason: "wall clock" | "CPU" };

export interface IsolateUsage {
  elapsedMs: number;
  cpuMs: number;
}

export interface IsolateState {
  retired: boolean;
  beforeunloadSent: boolean;
}

/**
 * The supervisor's rule for the gateway-side limits (memory is watched inside the
 * isolate, where V8's numbers are): the most severe step due and not yet taken.
 */
export function judgeIsolate(
  usage: IsolateUsage,
  state: IsolateState,
  limits: IsolateLimits,
): IsolateVerdict {
  const share = limits.beforeunloadPct / 100;
  if (usage.elapsedMs >= limits.wallClockMs) return { action: "terminate", reason: "wall clock" };
  if (usage.cpuMs >= limits.cpuHardMs) return { action: "terminate", reason: "CPU" };
  if (!state.beforeunloadSent) {
    if (usage.elapsedMs >= limits.wallClockMs * share) {
      return { action: "beforeunload", reason: "wall clock" };
    }
    if (usage.cpuMs >= limits.cpuHardMs * share) return { action: "beforeunload", reason: "CPU" };
  }
  if (!state.retired) {
    if (usage.elapsedMs >= limits.wallClockMs / 2) {
      return { action: "retire", reason: "wall clock half-life" };
    }
    if (usage.cpuMs >= limits.cpuSoftMs) return { action: "retire", reason: "CPU soft limit" };
  }
  return { action: "none" };
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

/**
 * CPU time of the isolate's thread: in `deno serve` JavaScript runs on the process's
 * main thread (task id = pid), so its utime + stime, as the edge runtime's per-thread
 * CPU timer counts it (crates/cpu_timer), without V8's GC and compiler helper threads.
 * Null when the process is gone.
 */
export function threadCpuMs(pid: number): number | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/stat`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    // Deno lets only --allow-all read another process's /proc entries.
    throw new Error("Cannot read a function's CPU time: the gateway needs --allow-all", {
      cause: error,
    });
  }
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}
