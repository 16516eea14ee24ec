/**
 * How `supabase functions deploy` resolves a function's dependencies, so the local
 * stack starts each function the same way (and fails where deploy would fail).
 *
 * The CLI's rule (supabase/cli apps/cli-go/internal/functions/deploy/deploy.go,
 * GetFunctionConfig; paths in config.toml are relative to supabase/, see
 * apps/cli-go/pkg/config/config.go): the --import-map flag, else `import_map` under
 * [functions.<name>] in config.toml, else supabase/functions/<name>/deno.json, else
 * deno.jsonc, else the deprecated import_map.json beside it, else the shared
 * supabase/functions/import_map.json, else none. The repository's root deno.json is
 * never used.
 */

import { parse as parseToml } from "smol-toml";

export type ImportMapSource =
  | "--import-map flag"
  | "config.toml import_map"
  | "deno.json"
  | "deno.jsonc"
  | "import_map.json"
  | "functions/import_map.json"
  | "none";

export interface FunctionLayout {
  name: string;
  entrypoint: string;
  importMap: string | null;
  source: ImportMapSource;
}

export interface FunctionConfigToml {
  entrypoint?: string;
  import_map?: string;
}

const exists = (path: string) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
};

export function resolveFunctionLayout(
  name: string,
  options: {
    supabaseDir: string;
    functionsDir?: string;
    config?: FunctionConfigToml;
    importMapFlag?: string;
  },
): FunctionLayout {
  const { supabaseDir, config = {}, importMapFlag } = options;
  const functionsDir = options.functionsDir ?? `${supabaseDir}/functions`;
  const relativeToSupabase = (path: string) =>
    path.startsWith("/") ? path : `${supabaseDir}/${path}`;
  const entrypoint = config.entrypoint
    ? relativeToSupabase(config.entrypoint)
    : `${functionsDir}/${name}/index.ts`;
  const functionDir = entrypoint.slice(0, entrypoint.lastIndexOf("/"));
  const layout = (importMap: string | null, source: ImportMapSource) => ({
    name,
    entrypoint,
    importMap,
    source,
  });
  if (importMapFlag) return layout(importMapFlag, "--import-map flag");
  if (config.import_map) {
    return layout(relativeToSupabase(config.import_map), "config.toml import_map");
  }
  for (const file of ["deno.json", "deno.jsonc", "import_map.json"] as const) {
    if (exists(`${functionDir}/${file}`)) return layout(`${functionDir}/${file}`, file);
  }
  if (exists(`${functionsDir}/import_map.json`)) {
    return layout(`${functionsDir}/import_map.json`, "functions/import_map.json");
  }
  return layout(null, "none");
}

/**
 * Deno flags that resolve the function with exactly that map and nothing else: a
 * deno.json(c) as the config (with its deno.lock beside it, frozen, when there is
 * one), a plain import map with no config, or no map at all.
 */
export function resolutionFlags(layout: FunctionLayout): string[] {
  const { importMap } = layout;
  if (!importMap) return ["--no-config", "--no-lock"];
  if (/\/deno\.jsonc?$/.test(importMap)) {
    const lock = `${importMap.slice(0, importMap.lastIndexOf("/"))}/deno.lock`;
    return ["--config", importMap, ...(exists(lock) ? ["--frozen"] : ["--no-lock"])];
  }
  return ["--no-config", "--no-lock", "--import-map", importMap];
}

/** The permissions the gateway grants every function (what the edge runtime allows). */
export const FUNCTION_PERMISSIONS = ["--allow-net", "--allow-env", "--allow-read", "--allow-sys"];

/**
 * `deno serve` on loopback `port` with the function's permissions and its imports
 * resolved exactly as deploy resolves them; the caller appends the entry. The one way
 * the gateway, the tests and the benchmarks start a function.
 */
export function serveFunctionArgs(port: number, layout: FunctionLayout): string[] {
  return [
    "serve",
    "--quiet",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    ...FUNCTION_PERMISSIONS,
    ...resolutionFlags(layout),
  ];
}

/** A function of this repository as deploy resolves it, its config.toml section included. */
export function repositoryFunction(name: string): FunctionLayout {
  const supabaseDir = new URL("../supabase", import.meta.url).pathname;
  const config = parseToml(Deno.readTextFileSync(`${supabaseDir}/config.toml`)) as {
    functions?: Record<string, FunctionConfigToml>;
  };
  return resolveFunctionLayout(name, { supabaseDir, config: config.functions?.[name] });
}
