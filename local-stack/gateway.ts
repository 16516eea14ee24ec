/**
 * Functions gateway STAND-IN (local stack only): serves every function in
 * supabase/functions at http://127.0.0.1:<port>/functions/v1/<name>, Supabase's
 * local URL shape.
 *
 * Each function runs in its own `deno serve` process with only its own environment
 * (the injected SUPABASE_* variables plus the secrets from --env-file), as separate
 * edge workers would. The gateway honours `verify_jwt` from supabase/config.toml:
 * when true, a request needs `Authorization: Bearer <JWT>` signed by the project
 * (any role), otherwise it is refused with 401 before the function sees it
 * (CORS preflights excepted, as on Supabase).
 *
 *   deno run --allow-net --allow-env --allow-read --allow-run gateway.ts \
 *     --port <STACK_GATEWAY_PORT> --db-url <postgres url> --env-file <state>/functions.env
 */
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from "jose";
import { parse as parseToml } from "smol-toml";
import { parseArgs } from "node:util";
import { readEnvFile } from "./env_file.ts";
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
  },
});
const port = Number(values.port);
const functionsDir = values["functions-dir"]!;

const secrets = readEnvFile(values["env-file"]);
const config = parseToml(Deno.readTextFileSync(values.config)) as {
  functions?: Record<string, { verify_jwt?: boolean }>;
};

// Same rule as Supabase: verify_jwt defaults to true unless config.toml says false.
const verifyJwtFor = (name: string) => config.functions?.[name]?.verify_jwt ?? true;

const projectKeys = secrets.SUPABASE_JWKS
  ? createLocalJWKSet(JSON.parse(secrets.SUPABASE_JWKS) as JSONWebKeySet)
  : null;

async function hasProjectJwt(request: Request): Promise<boolean> {
  const token = request.headers.get("authorization")?.match(/^Bearer (\S+)$/)?.[1];
  if (!token || !projectKeys) return false;
  try {
    await jwtVerify(token, projectKeys);
    return true;
  } catch {
    return false;
  }
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
    SUPABASE_URL: `http://127.0.0.1:${port}`,
    ...(values["db-url"] ? { SUPABASE_DB_URL: values["db-url"] } : {}),
    ...secrets,
  };
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
      `${functionsDir}/${name}/index.ts`,
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
