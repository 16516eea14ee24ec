/**
 * The migrations as the real Supabase CLI (npm `supabase`, pinned) sees them: every
 * local migration is applied on the stack's database, and applying again is a no-op.
 */
import assert from "node:assert/strict";
import { runCommand } from "../support/command.ts";
import { dbUrl } from "../support/local_stack.ts";

const repo = new URL("../../", import.meta.url).pathname;
const cli = `${repo}tools/node_modules/.bin/supabase`;

function supabase(...args: string[]) {
  return runCommand(cli, {
    args: [...args, "--workdir", repo, "--db-url", `${dbUrl}?sslmode=disable`],
  });
}

Deno.test("supabase migration list: every local migration is applied", async () => {
  const local = [...Deno.readDirSync(`${repo}supabase/migrations`)]
    .map((entry) => entry.name.match(/^(\d+)_/)?.[1])
    .filter((version): version is string => Boolean(version))
    .sort();
  assert.ok(local.length >= 3);
  const { code, text } = await supabase("migration", "list");
  assert.equal(code, 0, text);
  for (const version of local) {
    assert.match(
      text,
      new RegExp(`${version}\\W*\\|\\W*${version}`),
      `migration ${version} applied`,
    );
  }
});

Deno.test("supabase migration up again: nothing left to apply", async () => {
  const { code, text } = await supabase("migration", "up");
  assert.equal(code, 0, text);
  assert.match(text, /up to date/i);
  assert.doesNotMatch(text, /Applying migration/);
});
