/**
 * cron-auto-sync fails closed: with a missing or invalid keyring the function does
 * not start at all (the gateway then answers 503 BOOT_ERROR), and the start-up
 * error names the problem without echoing the secret.
 */
import assert from "node:assert/strict";
import { dbUrl, testPorts } from "../../local-stack/urls.ts";
import { repositoryFunction, serveFunctionArgs } from "../../local-stack/function_import_map.ts";

const layout = repositoryFunction("cron-auto-sync"); // as deploy resolves it

async function startWith(env: Record<string, string>) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [...serveFunctionArgs(testPorts.failClosedFunction, layout), layout.entrypoint],
    env: { SUPABASE_DB_URL: dbUrl, ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  return {
    code: output.code,
    log: new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout),
  };
}

Deno.test("no keyring: the function refuses to start", async () => {
  const { code, log } = await startWith({});
  assert.notEqual(code, 0);
  assert.match(log, /Missing AUTO_SYNC_SIGNING_SECRETS/);
});

Deno.test("an invalid keyring: refuses to start without echoing the secret", async () => {
  const weak = "whsec_c2hvcnQta2V5"; // 9 bytes: too short to be a key
  const { code, log } = await startWith({
    AUTO_SYNC_SIGNING_SECRETS: `v1,whsec_${"A".repeat(43)}=|v1,${weak}`,
  });
  assert.notEqual(code, 0);
  assert.match(log, /entry 2/);
  assert.equal(log.includes("c2hvcnQta2V5"), false);
  assert.equal(log.includes("A".repeat(43)), false);
});
