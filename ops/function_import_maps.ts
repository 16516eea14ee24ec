/**
 * Each function's own import map, `supabase/functions/<name>/deno.json`, is what
 * `supabase functions deploy` bundles it with (the repository's root deno.json is
 * never used for deploy). The versions live in one place, the root deno.json
 * "imports"; this tool derives each function's map from it: exactly the bare
 * specifiers the function's module graph imports, each pinned as the root pins it.
 *
 *   deno task function-maps           check (exit 1 and say what differs)
 *   deno task function-maps --write   rewrite the functions' deno.json, then refresh each
 *                                     function's deno.lock (`deno install`, needs npm)
 *
 * The local stack starts each function with its own deno.json and deno.lock
 * (--frozen), so a function whose map or lock is short fails there, as deploy would.
 */
import { parseArgs } from "node:util";

const repo = new URL("../", import.meta.url).pathname;
export const functionsDir = `${repo}supabase/functions`;

/** The functions `supabase functions deploy` would find: folders not starting with _ or . */
export function functionNames(dir = functionsDir): string[] {
  return [...Deno.readDirSync(dir)]
    .filter((entry) => entry.isDirectory && !/^[_.]/.test(entry.name))
    .map((entry) => entry.name)
    .sort();
}

/** The root deno.json's pins: the single source of the functions' versions. */
export function rootImports(): Record<string, string> {
  return JSON.parse(Deno.readTextFileSync(`${repo}deno.json`)).imports;
}

/** Bare specifiers (not relative, not node:, not URLs) in the function's module graph. */
export async function bareSpecifiers(name: string): Promise<string[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", `${repo}deno.json`, `${functionsDir}/${name}/index.ts`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(
      `Cannot read the module graph of "${name}": ${new TextDecoder().decode(output.stderr)}`,
    );
  }
  const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { dependencies?: { specifier: string }[] }[];
  };
  const specifiers = new Set<string>();
  for (const module of graph.modules) {
    for (const { specifier } of module.dependencies ?? []) {
      if (!/^(\.|\/|node:|npm:|jsr:|https?:|data:)/.test(specifier)) specifiers.add(specifier);
    }
  }
  return [...specifiers].sort();
}

/** The deno.json the function should have: its bare specifiers, pinned as the root pins them. */
export async function expectedFunctionConfig(
  name: string,
): Promise<{ imports: Record<string, string> }> {
  const pins = rootImports();
  const imports: Record<string, string> = {};
  for (const specifier of await bareSpecifiers(name)) {
    const key = specifier in pins
      ? specifier
      : Object.keys(pins).find((prefix) => prefix.endsWith("/") && specifier.startsWith(prefix));
    if (!key) throw new Error(`No pin for "${specifier}" (used by "${name}") in deno.json`);
    imports[key] = pins[key];
  }
  return { imports };
}

export function functionConfigPath(name: string): string {
  return `${functionsDir}/${name}/deno.json`;
}

function format(config: unknown): string {
  return JSON.stringify(config, null, 2) + "\n";
}

/** Names of the functions whose deno.json differs from what the root pins give. */
export async function staleFunctionConfigs(): Promise<string[]> {
  const stale = [];
  for (const name of functionNames()) {
    let actual = "";
    try {
      actual = Deno.readTextFileSync(functionConfigPath(name));
    } catch { /* missing counts as stale */ }
    if (actual !== format(await expectedFunctionConfig(name))) stale.push(name);
  }
  return stale;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { write: { type: "boolean", default: false } } });
  if (values.write) {
    for (const name of functionNames()) {
      Deno.writeTextFileSync(functionConfigPath(name), format(await expectedFunctionConfig(name)));
      const install = await new Deno.Command(Deno.execPath(), {
        args: ["install", "--quiet", "--config", functionConfigPath(name)],
      }).output();
      if (!install.success) throw new Error(`Cannot lock "${name}": deno install failed`);
      console.log(`wrote supabase/functions/${name}/deno.json and deno.lock`);
    }
  } else {
    const stale = await staleFunctionConfigs();
    if (stale.length > 0) {
      console.error(
        `Out of date: ${
          stale.map((name) => `supabase/functions/${name}/deno.json`).join(", ")
        } (run: deno task function-maps --write)`,
      );
      Deno.exit(1);
    }
    console.log("Every function's deno.json matches the root pins");
  }
}
