/**
 * Functions gateway STAND-IN (local stack only): serves every function in
 * supabase/functions at http://127.0.0.1:<port>/functions/v1/<name>, Supabase's
 * local URL shape.
 *
 * Each function runs in its own `deno serve` process with only its own environment
 * (what the platform injects in the project mode, platform_env.ts, plus the secrets
 * from --env-file minus reserved SUPABASE_ names), as separate edge workers would, and
 * resolves its imports with the map `supabase functions deploy` would pick
 * (function_import_map.ts), never the root deno.json. The gateway honours
 * `verify_jwt` from supabase/config.toml (self-hosted: one VERIFY_JWT for all): when
 * true, a request needs `Authorization: Bearer <JWT>` signed by the project (any
 * role), otherwise it is refused with 401 before the function sees it (CORS
 * preflights excepted, as on Supabase). It also answers Auth's JWKS and /user
 * routes at $SUPABASE_URL/auth/v1 (auth_stand_in.ts).
 *
 * Each function process is one edge-runtime isolate and lives within its limits
 * (isolate_limits.ts, sources there): it takes requests until half its wall clock or
 * its CPU soft limit, then a new instance takes the new ones while it finishes its
 * work; `beforeunload` comes before its wall clock, CPU or memory runs out; at the
 * limit it is killed. Several requests may land in one instance and share its budget.
 *
 *   deno run --allow-all gateway.ts \
 *     --port <STACK_GATEWAY_PORT> --db-url <postgres url> --env-file <state>/functions.env \
 *     [--project <state>/project.json] [--mode hosted-asymmetric|hosted-legacy|self-hosted]
 *     [--wall-clock-ms N] [--cpu-soft-ms N] [--cpu-hard-ms N] [--memory-mb N] [--beforeunload-pct N]
 * (--allow-all: Deno lets nothing less read the functions' CPU time in /proc/<pid>.)
 */
import postgres from "postgres";
import { parse as parseToml } from "smol-toml";
import { parseArgs } from "node:util";
import { createAuthStandIn, verifyProjectToken } from "./auth_stand_in.ts";
import { readEnvFile } from "./env_file.ts";
import {
  type FunctionConfigToml,
  resolveFunctionLayout,
  serveFunctionArgs,
} from "./function_import_map.ts";
import { isolateLimits, judgeIsolate, LIMIT_FLAGS, threadCpuMs } from "./isolate_limits.ts";
import { injectedEnv, userSecrets } from "./platform_env.ts";
import { parseProjectMode, readProject } from "./project.ts";
import { functionPort, gatewayPort } from "./urls.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: String(gatewayPort) },
    "db-url": { type: "string" },
    "env-file": { type: "string" },
    "functions-dir": {
      type: "string",
      default: new URL("../supabase/functions", import.meta.url).pathname,
    },
    config: {
      type: "string",
      default: new URL("../supabase/config.toml", import.meta.url).pathname,
    },
    project: { type: "string" },
    mode: { type: "string", default: Deno.env.get("STACK_PROJECT_MODE") ?? "hosted-asymmetric" },
    ...LIMIT_FLAGS,
  },
});
const limits = isolateLimits(values, Deno.env.toObject());
const isolateHost = new URL("./isolate_host.ts", import.meta.url).pathname;
const port = Number(values.port);
const functionsDir = values["functions-dir"]!;

const mode = parseProjectMode(values.mode!);
const supabaseDir = values.config!.slice(0, values.config!.lastIndexOf("/"));
const envFileDir = values["env-file"]?.slice(0, values["env-file"].lastIndexOf("/") + 1) ?? "";
const project = readProject(values.project ?? `${envFileDir}project.json`);
const secrets = userSecrets(readEnvFile(values["env-file"]));
const config = parseToml(Deno.readTextFileSync(values.config)) as {
  functions?: Record<string, FunctionConfigToml & { verify_jwt?: boolean }>;
};
const sql = values["db-url"]
  ? postgres(values["db-url"], { max: 2, onnotice: () => {} })
  : undefined;
const authRoutes = createAuthStandIn({ project, mode, sql });

// Same rule as Supabase: verify_jwt defaults to true unless config.toml says false.
// Self-hosted has one VERIFY_JWT for every function behind the `main` router.
const verifyJwtFor = (name: string) =>
  mode === "self-hosted" ? false : config.functions?.[name]?.verify_jwt ?? true;

async function hasProjectJwt(request: Request): Promise<boolean> {
  const token = request.headers.get("authorization")?.match(/^Bearer (\S+)$/)?.[1];
  return token ? (await verifyProjectToken(token, { project, mode })) !== null : false;
}

/** One function instance: a `deno serve` process, as one edge-runtime isolate. */
interface Instance {
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

interface ServedFunction {
  name: string;
  /** Where requests go; a new instance replaces it when it retires or ends. */
  current: Instance;
  /** A boot that failed (exited before it listened): BOOT_ERROR, as on the platform. */
  bootFailed: boolean;
}

// Instances listen on ports after the functions' own: functionPort(port, names.length + slot).
const INSTANCE_SLOTS = 16;
let nextSlot = 0;
const liveInstances = new Set<Instance>();

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

function freeInstancePort(): number {
  for (let tried = 0; tried < INSTANCE_SLOTS; tried++) {
    const candidate = functionPort(port, names.length + nextSlot);
    nextSlot = (nextSlot + 1) % INSTANCE_SLOTS;
    const ours = [...liveInstances].some((instance) => instance.port === candidate);
    if (!ours && portIsFree(candidate)) return candidate;
  }
  throw new Error(`No free instance port among ${INSTANCE_SLOTS}`);
}

function startInstance(name: string, served?: ServedFunction): Instance {
  const instancePort = freeInstancePort();
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    NO_COLOR: "1",
    ...secrets,
    ...injectedEnv(project, {
      mode,
      supabaseUrl: `http://127.0.0.1:${port}`,
      dbUrl: values["db-url"],
      functionName: name,
    }),
  };
  const layout = resolveFunctionLayout(name, {
    supabaseDir,
    functionsDir,
    config: config.functions?.[name],
  });
  if (Deno.env.get("DENO_DIR")) env.DENO_DIR = Deno.env.get("DENO_DIR")!;
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      ...serveFunctionArgs(instancePort, layout),
      isolateHost,
      layout.entrypoint,
      JSON.stringify({ memoryMb: limits.memoryMb, beforeunloadPct: limits.beforeunloadPct }),
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

const SUPERVISOR_TICK_MS = 50;

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

const names = [...Deno.readDirSync(functionsDir)]
  .filter((entry) =>
    entry.isDirectory && !entry.name.startsWith("_") && !entry.name.startsWith(".")
  )
  .map((entry) => entry.name)
  .sort();
const functions = new Map<string, ServedFunction>();
for (const name of names) {
  const served = { name, bootFailed: false } as ServedFunction;
  served.current = startInstance(name, served);
  functions.set(name, served);
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

/** Waits until the instance listens (true) or exits (false). */
async function booted(instance: Instance, timeoutMs = 30_000): Promise<boolean> {
  const started = Date.now();
  while (!instance.exited && Date.now() - started < timeoutMs) {
    if (await listens(instance.port)) {
      instance.up = true;
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

/**
 * The instance that takes the next request: the current one while it neither retired
 * nor ended, else a new one (the runtime's pool creates a new worker the same way).
 */
function instanceFor(served: ServedFunction): Instance {
  const { current } = served;
  if (current.retired || (current.exited && current.up)) {
    served.current = startInstance(served.name, served);
  }
  return served.current;
}

async function isUp(served: ServedFunction): Promise<boolean> {
  if (served.bootFailed) return false;
  const instance = instanceFor(served);
  return instance.up ? !instance.exited : await listens(instance.port) && (instance.up = true);
}

const json = (status: number, body: unknown) => Response.json(body, { status });

Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (request) => {
  const url = new URL(request.url);
  const authAnswer = authRoutes(request);
  if (authAnswer) return await authAnswer;
  if (url.pathname === "/health") {
    const states = await Promise.all([...functions.values()].map(isUp));
    return states.every(Boolean) ? json(200, { ok: true }) : json(503, { ok: false });
  }
  const match = url.pathname.match(/^\/functions\/v1\/([A-Za-z0-9_-]+)(\/.*)?$/);
  const served = match ? functions.get(match[1]) : undefined;
  if (!match || !served) {
    return json(404, { code: "NOT_FOUND", message: "Requested function was not found" });
  }
  if (served.bootFailed) return bootError();
  // CORS preflights carry no Authorization header; the function answers them itself.
  const preflight = request.method === "OPTIONS";
  if (verifyJwtFor(served.name) && !preflight && !(await hasProjectJwt(request))) {
    return json(401, { code: 401, message: "Invalid JWT" });
  }

  return await forward(served, request, `/${served.name}${match[2] ?? ""}${url.search}`);
});

const bootError = () =>
  json(503, { code: "BOOT_ERROR", message: "Function failed to start (please check logs)" });

/** Passes the request to the function's instance that takes new requests. */
async function forward(served: ServedFunction, request: Request, path: string) {
  const instance = instanceFor(served);
  if (!instance.up && !(await booted(instance))) {
    if (served.current === instance && !instance.up) served.bootFailed = true;
    return bootError();
  }
  const headers = new Headers(request.headers);
  headers.delete("host");
  headers.delete("content-length"); // the body is streamed through as it arrives
  try {
    return await fetch(`http://127.0.0.1:${instance.port}${path}`, {
      method: request.method,
      headers,
      body: request.body,
      redirect: "manual",
    });
  } catch {
    // The platform answers a worker that ended mid-request with 546 WORKER_LIMIT
    // when a limit ended it; a plain 502 otherwise.
    return instance.exited
      ? json(546, { code: "WORKER_LIMIT", message: "Function instance ended (resource limit)" })
      : json(502, { code: "BAD_GATEWAY", message: "Function did not answer" });
  }
}

// Each function also answers on its own port, functionPort(port, index), without the
// gateway's JWT check (tests reach "the function itself" there), through the same instances.
for (const [index, name] of names.entries()) {
  const served = functions.get(name)!;
  Deno.serve(
    { hostname: "127.0.0.1", port: functionPort(port, index), onListen: () => {} },
    (request) => {
      const url = new URL(request.url);
      return served.bootFailed ? bootError() : forward(served, request, url.pathname + url.search);
    },
  );
}

const stop = () => {
  for (const instance of liveInstances) instance.process.kill("SIGTERM");
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
