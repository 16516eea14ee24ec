/**
 * types/database.ts is what `supabase gen types typescript` makes of the stack's schema
 * (ops/gen_types.ts runs the CLI's postgres-meta version with the CLI's settings): the test
 * regenerates it and fails on any difference, and the check names a drifted file.
 */
import assert from "node:assert/strict";
import { generateTypes, includedSchemas } from "../../ops/gen_types.ts";
import { dbUrl } from "../support/local_stack.ts";

const repo = new URL("../../", import.meta.url).pathname;

function typesCheck(typesFile: string) {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-run=node",
      "--allow-env",
      `${repo}ops/gen_types.ts`,
      "--local-stack",
      "--types-file",
      typesFile,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
}

Deno.test("the committed types are what the generator makes of the schema", async () => {
  const generated = await generateTypes(dbUrl);
  const committed = await Deno.readTextFile(`${repo}types/database.ts`);
  assert.equal(
    committed,
    generated,
    "types/database.ts drifted: run deno task types --local-stack --write",
  );
  // The user API the app calls is in it, with its arguments.
  for (
    const name of [
      "get_auto_sync_run",
      "list_auto_sync_runs",
      "get_mailbox_states",
      "add_mailbox",
      "enable_auto_sync",
    ]
  ) {
    assert.match(generated, new RegExp(`^      ${name}: \\{`, "m"), name);
  }
  assert.match(generated, /get_auto_sync_run: \{\n\s+Args: \{ p_run_id: string \}/);
});

Deno.test("a types file that differs from the schema fails the check, naming the line", async () => {
  const drifted = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    const committed = await Deno.readTextFile(`${repo}types/database.ts`);
    await Deno.writeTextFile(
      drifted,
      committed.replace("get_mailbox_states: {", "get_mailbox_state: {"),
    );
    const output = await typesCheck(drifted);
    assert.equal(output.code, 1);
    assert.match(
      new TextDecoder().decode(output.stderr),
      /has drifted from the schema \(first difference at line \d+: "\s+get_mailbox_states: \{"\)/,
    );
    const clean = await typesCheck(`${repo}types/database.ts`);
    assert.equal(clean.code, 0, new TextDecoder().decode(clean.stderr));
  } finally {
    await Deno.remove(drifted);
  }
});

Deno.test("the schemas included are the CLI's: public, then config.toml's [api] schemas", async () => {
  assert.deepEqual(
    includedSchemas(await Deno.readTextFile(`${repo}supabase/config.toml`)),
    ["public", "graphql_public"],
  );
  assert.deepEqual(includedSchemas('[api]\nschemas = ["api", "public"]\n'), ["public", "api"]);
  assert.deepEqual(includedSchemas(""), ["public"]);
});
