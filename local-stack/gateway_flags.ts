/**
 * The gateway's configuration, from its flags and environment (usage: gateway.ts):
 * where it listens, the functions and config.toml it serves, the project mode and its
 * keys, the functions' secrets, and the isolate limits (isolate_limits.ts).
 */
import { parse as parseToml } from "smol-toml";
import { parseArgs } from "node:util";
import { readEnvFile } from "./env_file.ts";
import type { FunctionConfigToml } from "./function_import_map.ts";
import { type IsolateLimits, isolateLimits, LIMIT_FLAGS } from "./isolate_limits.ts";
import { userSecrets } from "./platform_env.ts";
import { parseProjectMode, type ProjectMode, readProject, type StackProject } from "./project.ts";
import { gatewayPort } from "./urls.ts";

export type GatewayFunctionConfig = FunctionConfigToml & { verify_jwt?: boolean };

export interface GatewayConfig {
  port: number;
  dbUrl?: string;
  functionsDir: string;
  /** The folder holding config.toml (function paths in it are relative to it). */
  supabaseDir: string;
  /** `[functions.<name>]` tables of config.toml. */
  functions: Record<string, GatewayFunctionConfig>;
  mode: ProjectMode;
  project: StackProject;
  /** The functions' secrets from --env-file, reserved SUPABASE_ names dropped. */
  secrets: Record<string, string>;
  limits: IsolateLimits;
  /** Self-hosted only: the `main` router's one VERIFY_JWT for every function. */
  selfHostedVerifyJwt: boolean;
  /**
   * Function instances alive at once (ports). A retired instance lives on until its
   * wall clock ends (the runtime's early drop of an idle one is not emulated), so a
   * chain of fresh instances, one every few seconds, needs more than the default 16.
   */
  instanceSlots: number;
}

export function readGatewayConfig(
  args: string[],
  env: Record<string, string | undefined>,
): GatewayConfig {
  const { values } = parseArgs({
    args,
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
      mode: { type: "string", default: env.STACK_PROJECT_MODE ?? "hosted-asymmetric" },
      "verify-jwt": { type: "string", default: env.STACK_SELF_HOSTED_VERIFY_JWT ?? "false" },
      "instance-slots": { type: "string", default: "16" },
      ...LIMIT_FLAGS,
    },
  });
  // In this order, so that a bad limit or mode is the error reported first.
  const mode = parseProjectMode(values.mode!);
  const limits = isolateLimits(values, env, mode);
  const verifyJwt = values["verify-jwt"];
  if (verifyJwt !== "true" && verifyJwt !== "false") {
    throw new Error(`Invalid --verify-jwt "${verifyJwt}": expected "true" or "false"`);
  }
  const instanceSlots = Number(values["instance-slots"]);
  if (!Number.isInteger(instanceSlots) || instanceSlots < 1 || instanceSlots > 64) {
    throw new Error(`Invalid --instance-slots "${values["instance-slots"]}": expected 1 to 64`);
  }
  const configPath = values.config!;
  const envFile = values["env-file"];
  const envFileDir = envFile?.slice(0, envFile.lastIndexOf("/") + 1) ?? "";
  const project = readProject(values.project ?? `${envFileDir}project.json`);
  const secrets = userSecrets(readEnvFile(envFile));
  const toml = parseToml(Deno.readTextFileSync(configPath)) as {
    functions?: Record<string, GatewayFunctionConfig>;
  };
  return {
    port: Number(values.port),
    dbUrl: values["db-url"],
    functionsDir: values["functions-dir"]!,
    supabaseDir: configPath.slice(0, configPath.lastIndexOf("/")),
    functions: toml.functions ?? {},
    mode,
    instanceSlots,
    project,
    secrets,
    limits,
    selfHostedVerifyJwt: verifyJwt === "true",
  };
}

/**
 * Same rule as Supabase: verify_jwt defaults to true unless config.toml says false.
 * Self-hosted ignores config.toml: one VERIFY_JWT for every function behind the `main`
 * router (--verify-jwt / STACK_SELF_HOSTED_VERIFY_JWT, off by default as README sets it).
 */
export function verifiesJwt(config: GatewayConfig, name: string): boolean {
  return config.mode === "self-hosted"
    ? config.selfHostedVerifyJwt
    : config.functions[name]?.verify_jwt ?? true;
}

/** The functions to serve: every folder of functionsDir not starting with `_` or `.`. */
export function functionNames(functionsDir: string): string[] {
  return [...Deno.readDirSync(functionsDir)]
    .filter((entry) =>
      entry.isDirectory && !entry.name.startsWith("_") && !entry.name.startsWith(".")
    )
    .map((entry) => entry.name)
    .sort();
}
