/**
 * The gateway's function instances: each function runs in its own `deno serve`
 * process (isolate_host.ts) with only its own environment (what the platform injects
 * in the project mode, platform_env.ts, plus the user's secrets) and the import map
 * deploy would pick (function_import_map.ts), as one edge-runtime isolate.
 *
 * Each instance lives within the runtime's limits (isolate_limits.ts has the rule and
 * its sources): it takes requests until half its wall clock or its CPU soft limit,
 * then a new instance takes the new ones while it finishes its work; `beforeunload`
 * (SIGUSR2 to isolate_host.ts) comes before its wall clock, CPU or memory runs out; at
 * the limit it is killed.
 */
import { resolveFunctionLayout, serveFunctionArgs } from "./function_import_map.ts";
import type { GatewayConfig } from "./gateway_flags.ts";
import { judgeIsolate, threadCpuMs } from "./isolate_limits.ts";
import { injectedEnv } from "./platform_env.ts";
import { functionPort } from "./urls.ts";

/** One function instance: a `deno serve` process, as one edge-runtime isolate. */
export interface Instance {
  port: number;
  process: Deno.ChildProcess;
  startedAt: number;
  /** It answered on its port once: an exit after that is a crash or a limit, not a boot error. */
  up: boolean;
  exited: boolean;
  /** Takes no new request (half its wall clock, or the CPU soft limit). */
  retired: boolean;
  beforeunloadSent: boolean;
}

export interface ServedFunction {
  name: string;
  /** Where requests go; a new instance replaces it when it retires or ends. */
  current: Instance;
  /** A boot that failed (exited before it listened): BOOT_ERROR, as on the platform. */
  bootFailed: boolean;
}

export interface FunctionSupervisor {
  /** Every served function by name. */
  functions: Map<string, ServedFunction>;
  /**
   * The instance that takes the next request: the current one while it neither retired
   * nor ended, else a new one (the runtime's pool creates a new worker the same way).
   */
  instanceFor(served: ServedFunction): Instance;
  /** Waits until the instance listens (true) or exits (false). */
  booted(instance: Instance, timeoutMs?: number): Promise<boolean>;
  /** The function has an instance that listens (starting one if its current one retired). */
  isUp(served: ServedFunction): Promise<boolean>;
  /** SIGTERM to every live instance. */
  stopAll(): void;
}

// Instances listen on ports after the functions' own: functionPort(port, names.length + slot),
// config.instanceSlots of them.
const SUPERVISOR_TICK_MS = 50;
const isolateHost = new URL("./isolate_host.ts", import.meta.url).pathname;

function log(level: string, message: string, fields: Record<string, unknown> = {}) {
  console.error(JSON.stringify({ level, component: "gateway", message, ...fields }));
}

/** Nothing listens there (e.g. an instance of a gateway just stopped may still be closing). */
function portIsFree(candidate: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port: candidate }).close();
    return true;
  } catch {
    return false;
  }
}

async function listens(instancePort: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: instancePort });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** Starts one instance of each function in `names`, and keeps them within their limits. */
export function startFunctions(config: GatewayConfig, names: string[]): FunctionSupervisor {
  const { port, limits } = config;
  let nextSlot = 0;
  const liveInstances = new Set<Instance>();

  function freeInstancePort(): number {
    for (let tried = 0; tried < config.instanceSlots; tried++) {
      const candidate = functionPort(port, names.length + nextSlot);
      nextSlot = (nextSlot + 1) % config.instanceSlots;
      const ours = [...liveInstances].some((instance) => instance.port === candidate);
      if (!ours && portIsFree(candidate)) return candidate;
    }
    throw new Error(`No free instance port among ${config.instanceSlots}`);
  }

  function startInstance(name: string, served?: ServedFunction): Instance {
    const instancePort = freeInstancePort();
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/tmp",
      NO_COLOR: "1",
      ...config.secrets,
      ...injectedEnv(config.project, {
        mode: config.mode,
        supabaseUrl: `http://127.0.0.1:${port}`,
        dbUrl: config.dbUrl,
        functionName: name,
        verifyJwt: config.selfHostedVerifyJwt,
      }),
    };
    const layout = resolveFunctionLayout(name, {
      supabaseDir: config.supabaseDir,
      functionsDir: config.functionsDir,
      config: config.functions[name],
    });
    if (Deno.env.get("DENO_DIR")) env.DENO_DIR = Deno.env.get("DENO_DIR")!;
    const process = new Deno.Command(Deno.execPath(), {
      args: [
        ...serveFunctionArgs(instancePort, layout),
        isolateHost,
        layout.entrypoint,
        JSON.stringify({
          memoryMb: limits.memoryMb,
          beforeunloadPct: limits.beforeunloadPct,
          name,
        }),
      ],
      clearEnv: true,
      env,
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const instance: Instance = {
      port: instancePort,
      process,
      startedAt: Date.now(),
      up: false,
      exited: false,
      retired: false,
      beforeunloadSent: false,
    };
    liveInstances.add(instance);
    // Up as soon as it listens, requested or not: an idle instance that its wall clock
    // then ends is replaced on the next request (as the runtime creates a new worker),
    // not reported as a boot that failed.
    void waitUntilListening(instance);
    const supervisor = setInterval(() => supervise(name, instance), SUPERVISOR_TICK_MS);
    process.status.then((status) => {
      instance.exited = true;
      clearInterval(supervisor);
      liveInstances.delete(instance);
      if (served && served.current === instance && !instance.up) served.bootFailed = true;
      log("error", `Function "${name}" exited`, { code: status.code, port: instancePort });
    });
    return instance;
  }

  /** One look at an instance's wall clock and CPU (isolate_limits.ts has the rule). */
  function supervise(name: string, instance: Instance) {
    if (instance.exited) return;
    let cpuMs: number | null;
    try {
      cpuMs = threadCpuMs(instance.process.pid);
    } catch (error) {
      log("error", (error as Error).message);
      Deno.exit(1); // never serve functions without their limits
    }
    if (cpuMs === null) return;
    const usage = { elapsedMs: Date.now() - instance.startedAt, cpuMs };
    const verdict = judgeIsolate(usage, instance, limits);
    if (verdict.action === "none") return;
    const fields = { port: instance.port, elapsed_ms: usage.elapsedMs, cpu_ms: cpuMs };
    if (verdict.action === "retire") {
      instance.retired = true;
      log("info", `Function "${name}" instance retired: ${verdict.reason}`, fields);
    } else if (verdict.action === "beforeunload") {
      instance.beforeunloadSent = true;
      log("warn", `Function "${name}" instance gets beforeunload: ${verdict.reason}`, fields);
      try {
        instance.process.kill("SIGUSR2");
      } catch { /* already gone */ }
    } else {
      log("error", `Function "${name}" instance terminated: ${verdict.reason} limit`, fields);
      instance.retired = true;
      try {
        instance.process.kill("SIGKILL");
      } catch { /* already gone */ }
    }
  }

  /** Waits until the instance listens (true: it is up) or exits (false). */
  async function waitUntilListening(instance: Instance, timeoutMs = 30_000): Promise<boolean> {
    const started = Date.now();
    while (!instance.exited && Date.now() - started < timeoutMs) {
      if (instance.up) return true;
      if (await listens(instance.port)) {
        instance.up = true;
        return true;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return instance.up;
  }

  const functions = new Map<string, ServedFunction>();
  for (const name of names) {
    const served = { name, bootFailed: false } as ServedFunction;
    served.current = startInstance(name, served);
    functions.set(name, served);
  }

  function instanceFor(served: ServedFunction): Instance {
    const { current } = served;
    if (current.retired || (current.exited && current.up)) {
      served.current = startInstance(served.name, served);
    }
    return served.current;
  }

  return {
    functions,
    instanceFor,
    booted: waitUntilListening,
    async isUp(served) {
      if (served.bootFailed) return false;
      const instance = instanceFor(served);
      return instance.up ? !instance.exited : await listens(instance.port) && (instance.up = true);
    },
    stopAll() {
      for (const instance of liveInstances) instance.process.kill("SIGTERM");
    },
  };
}
