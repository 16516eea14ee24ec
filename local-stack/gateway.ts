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
 *   deno run --allow-net --allow-env --allow-read --allow-run gateway.ts \
 *     --port <STACK_GATEWAY_PORT> --db-url <postgres url> --env-file <state>/functions.env \
 *     [--project <state>/project.json] [--mode hosted-asymmetric|hosted-legacy|self-hosted]
 */
import postgres from "postgres";
import { parse as parseToml } from "smol-toml";
import { parseArgs } from "node:util";
import { createAuthStandIn, verifyProjectToken } from "./auth_stand_in.ts";
import { readEnvFile } from "./env_file.ts";
import {
  type FunctionConfigToml,
  resolutionFlags,
  resolveFunctionLayout,
} from "./function_import_map.ts";
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
  },
});
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

interface ServedFunction {
  name: string;
  port: number;
  process: Deno.ChildProcess;
  exited: boolean;
}

function startFunction(name: string, index: number): ServedFunction {
  const servedPort = functionPort(port, index);
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
      "serve",
      "--quiet",
      "--host",
      "127.0.0.1",
      "--port",
      String(servedPort),
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      ...resolutionFlags(layout),
      layout.entrypoint,
    ],
    clearEnv: true,
    env,
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const served: ServedFunction = { name, port: servedPort, process, exited: false };
  process.status.then((status) => {
    served.exited = true;
    console.error(
      JSON.stringify({
        level: "error",
        component: "gateway",
        message: `Function "${name}" exited`,
        code: status.code,
      }),
    );
  });
  return served;
}

const names = [...Deno.readDirSync(functionsDir)]
  .filter((entry) =>
    entry.isDirectory && !entry.name.startsWith("_") && !entry.name.startsWith(".")
  )
  .map((entry) => entry.name)
  .sort();
const functions = new Map(names.map((name, index) => [name, startFunction(name, index)]));

async function isUp(served: ServedFunction): Promise<boolean> {
  if (served.exited) return false;
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: served.port });
    conn.close();
    return true;
  } catch {
    return false;
  }
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
  if (served.exited) {
    return json(503, {
      code: "BOOT_ERROR",
      message: "Function failed to start (please check logs)",
    });
  }
  // CORS preflights carry no Authorization header; the function answers them itself.
  const preflight = request.method === "OPTIONS";
  if (verifyJwtFor(served.name) && !preflight && !(await hasProjectJwt(request))) {
    return json(401, { code: 401, message: "Invalid JWT" });
  }

  const headers = new Headers(request.headers);
  headers.delete("host");
  headers.delete("content-length"); // the body is streamed through as it arrives
  try {
    return await fetch(
      `http://127.0.0.1:${served.port}/${served.name}${match[2] ?? ""}${url.search}`,
      {
        method: request.method,
        headers,
        body: request.body,
        redirect: "manual",
      },
    );
  } catch {
    return json(502, { code: "BAD_GATEWAY", message: "Function did not answer" });
  }
});

const stop = () => {
  for (const served of functions.values()) {
    if (!served.exited) served.process.kill("SIGTERM");
  }
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
