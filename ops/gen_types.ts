/**
 * TypeScript types of the Data API, generated as `supabase gen types typescript --db-url`
 * generates them, without Docker: the CLI (2.117.0, apps/cli-go internal/gen/types) runs the
 * image supabase/postgres-meta:v0.99.0 as `node dist/server/server.js` with
 * PG_META_GENERATE_TYPES=typescript, the schemas `public` + config.toml's [api] schemas and
 * one-to-one relationship detection on; this runs the same package version from npm
 * (tools/package.json) with the same environment, under Node.
 *
 *   deno task types --local-stack [--write]      check (exit 1 on drift) or rewrite
 *   deno task types --db-url <url> [--types-file <path>]
 */
import { parseArgs } from "node:util";
import { parse as parseToml } from "smol-toml";
import * as localStack from "../local-stack/urls.ts";

const repo = new URL("../", import.meta.url).pathname;
const server = `${repo}tools/node_modules/@supabase/postgres-meta/dist/server/server.js`;

/** The schemas the CLI includes when no --schema is given: public, then [api] schemas. */
export function includedSchemas(configToml: string): string[] {
  const config = parseToml(configToml) as { api?: { schemas?: string[] } };
  return [...new Set(["public", ...(config.api?.schemas ?? [])])];
}

/** Runs postgres-meta's generator against `dbUrl`; returns the types as it prints them. */
export async function generateTypes(dbUrl: string): Promise<string> {
  const schemas = includedSchemas(await Deno.readTextFile(`${repo}supabase/config.toml`));
  const output = await new Deno.Command("node", {
    args: [server],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      PG_META_DB_URL: dbUrl,
      PG_CONN_TIMEOUT_SECS: "15",
      PG_QUERY_TIMEOUT_SECS: "15",
      PG_META_GENERATE_TYPES: "typescript",
      PG_META_GENERATE_TYPES_INCLUDED_SCHEMAS: schemas.join(","),
      PG_META_GENERATE_TYPES_SWIFT_ACCESS_CONTROL: "internal",
      PG_META_GENERATE_TYPES_DETECT_ONE_TO_ONE_RELATIONSHIPS: "true",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(
      `Cannot generate types: postgres-meta exited ${output.code}: ${
        new TextDecoder().decode(output.stderr).split("\n").slice(-5).join(" ")
      }`,
    );
  }
  return new TextDecoder().decode(output.stdout);
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      "db-url": { type: "string" },
      "local-stack": { type: "boolean", default: false },
      "types-file": { type: "string", default: `${repo}types/database.ts` },
      write: { type: "boolean", default: false },
    },
  });
  const dbUrl = values["local-stack"] ? localStack.dbUrl : values["db-url"];
  if (!dbUrl) {
    console.error("Usage: deno task types --db-url <postgres url> | --local-stack [--write]");
    Deno.exit(2);
  }
  const file = values["types-file"]!;
  const generated = await generateTypes(dbUrl);
  if (values.write) {
    await Deno.writeTextFile(file, generated);
    console.log(`wrote ${file}`);
    Deno.exit(0);
  }
  const committed = await Deno.readTextFile(file).catch(() => "");
  if (committed === generated) {
    console.log(`${file} matches the schema`);
    Deno.exit(0);
  }
  const [a, b] = [committed.split("\n"), generated.split("\n")];
  const line = a.findIndex((text, index) => text !== b[index]);
  console.error(
    `${file} has drifted from the schema (first difference at line ${
      (line === -1 ? a.length : line) + 1
    }: "${b[line === -1 ? a.length : line] ?? ""}"): run deno task types --local-stack --write`,
  );
  Deno.exit(1);
}
