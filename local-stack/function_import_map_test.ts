import assert from "node:assert/strict";
import { resolutionFlags, resolveFunctionLayout } from "./function_import_map.ts";

/** A throwaway project's supabase/ folder with the given files (path from it → content). */
function supabaseDir(files: Record<string, string>): string {
  const dir = `${Deno.makeTempDirSync({ prefix: "layout-" })}/supabase`;
  for (const [path, content] of Object.entries(files)) {
    Deno.mkdirSync(`${dir}/${path.slice(0, path.lastIndexOf("/"))}`, { recursive: true });
    Deno.writeTextFileSync(`${dir}/${path}`, content);
  }
  return dir;
}

const every = {
  "functions/probe/index.ts": "",
  "functions/probe/deno.json": "{}",
  "functions/probe/deno.jsonc": "{}",
  "functions/probe/import_map.json": "{}",
  "functions/import_map.json": "{}",
  "maps/custom.json": "{}",
};

Deno.test("deploy's import map rule: flag, config.toml, deno.json, deno.jsonc, import_map.json, shared map", () => {
  const dir = supabaseDir(every);
  const resolve = (options: { config?: { import_map?: string }; importMapFlag?: string } = {}) =>
    resolveFunctionLayout("probe", { supabaseDir: dir, ...options });
  assert.deepEqual(
    resolve({ importMapFlag: "/elsewhere/map.json", config: { import_map: "maps/custom.json" } }),
    {
      name: "probe",
      entrypoint: `${dir}/functions/probe/index.ts`,
      importMap: "/elsewhere/map.json",
      source: "--import-map flag",
    },
  );
  // Paths in config.toml are relative to supabase/.
  assert.equal(
    resolve({ config: { import_map: "maps/custom.json" } }).importMap,
    `${dir}/maps/custom.json`,
  );
  const order = [
    ["functions/probe/deno.json", "deno.json"],
    ["functions/probe/deno.jsonc", "deno.jsonc"],
    ["functions/probe/import_map.json", "import_map.json"],
    ["functions/import_map.json", "functions/import_map.json"],
  ];
  for (const [file, source] of order) {
    const layout = resolve();
    assert.equal(layout.source, source);
    assert.equal(layout.importMap, `${dir}/${file}`);
    Deno.removeSync(`${dir}/${file}`);
  }
  assert.deepEqual(resolve(), {
    name: "probe",
    entrypoint: `${dir}/functions/probe/index.ts`,
    importMap: null,
    source: "none",
  });
});

Deno.test("the root deno.json beside supabase/ is never a function's map", () => {
  const dir = supabaseDir({
    "functions/probe/index.ts": "",
    "../deno.json": "{}",
    "deno.json": "{}",
  });
  assert.equal(resolveFunctionLayout("probe", { supabaseDir: dir }).source, "none");
});

Deno.test("an entrypoint from config.toml moves where the function's own deno.json is looked for", () => {
  const dir = supabaseDir({ "elsewhere/main.ts": "", "elsewhere/deno.json": "{}" });
  const layout = resolveFunctionLayout("probe", {
    supabaseDir: dir,
    config: { entrypoint: "elsewhere/main.ts" },
  });
  assert.equal(layout.entrypoint, `${dir}/elsewhere/main.ts`);
  assert.equal(layout.importMap, `${dir}/elsewhere/deno.json`);
});

Deno.test("Deno is started with that map and no other configuration", () => {
  const dir = supabaseDir({
    "functions/locked/deno.json": "{}",
    "functions/locked/deno.lock": "{}",
    "functions/unlocked/deno.jsonc": "{}",
    "functions/import_map.json": "{}",
  });
  const flags = (name: string) =>
    resolutionFlags(resolveFunctionLayout(name, { supabaseDir: dir }));
  assert.deepEqual(flags("locked"), ["--config", `${dir}/functions/locked/deno.json`, "--frozen"]);
  assert.deepEqual(flags("unlocked"), [
    "--config",
    `${dir}/functions/unlocked/deno.jsonc`,
    "--no-lock",
  ]);
  assert.deepEqual(flags("other"), [
    "--no-config",
    "--no-lock",
    "--import-map",
    `${dir}/functions/import_map.json`,
  ]);
  Deno.removeSync(`${dir}/functions/import_map.json`);
  assert.deepEqual(flags("other"), ["--no-config", "--no-lock"]);
});
