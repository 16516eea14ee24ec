/**
 * The key tool against the local stack: a full rotation with overlap and an
 * emergency revocation, with the real function checked by signed probes at each
 * step, and no secret ever printed or written where git would see it.
 */
import assert from "node:assert/strict";
import { runCommand } from "../support/command.ts";
import { connect, dbUrl, readFunctionsEnv, stackSecrets } from "../support/local_stack.ts";
import {
  claimsFor,
  createDispatchedRun,
  send,
  signInDatabase,
} from "../support/signed_requests.ts";
import { createUser } from "../support/local_stack.ts";

const repo = new URL("../../", import.meta.url).pathname;
const sql = connect();
const printed: string[] = [];

async function keys(...args: string[]) {
  return await keysIn({}, ...args);
}

/** The key tool run from `cwd` with extra environment (e.g. its own TMPDIR and HOME). */
async function keysIn(place: { cwd?: string; env?: Record<string, string> }, ...args: string[]) {
  const result = await runCommand(Deno.execPath(), {
    cwd: place.cwd,
    env: place.env,
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      `${repo}ops/keys.ts`,
      ...args,
    ],
  });
  printed.push(result.text);
  return result;
}

const vaultKeyNames = async () =>
  (await sql`select name from vault.secrets where name like 'auto_sync_signing_key:%' order by created_at`)
    .map((row) => row.name as string);

/** A run dispatched the way dispatch() signs it (every Vault key) is accepted. */
async function dispatchedRequestIsAccepted() {
  const userId = await createUser(sql, "keys");
  const runId = await createDispatchedRun(sql, userId);
  const request = await signInDatabase(sql, claimsFor(userId, runId));
  const response = await send(request);
  await response.body?.cancel();
  return { status: response.status, signatures: request.signature.split(" ").length };
}

const seenSecrets = new Set<string>(stackSecrets());
const label = `t${Date.now()}`;

Deno.test("rotation with overlap: verifier first, then signer; old key leaves Vault, then the verifier", async () => {
  const before = await vaultKeyNames();
  assert.equal(before.length, 1);

  const begin = await keys("rotate-begin", "--local-stack", "--label", `${label}a`);
  assert.equal(begin.code, 0, begin.text);
  assert.match(begin.text, /checked: the function accepts the new key/);
  stackSecrets().forEach((secret) => seenSecrets.add(secret));
  assert.deepEqual(await vaultKeyNames(), [...before, `auto_sync_signing_key:${label}a`]);
  assert.equal(readFunctionsEnv().AUTO_SYNC_SIGNING_SECRETS.split("|").length, 2);
  assert.deepEqual(await dispatchedRequestIsAccepted(), { status: 202, signatures: 2 });

  const finish = await keys("rotate-finish", "--local-stack");
  assert.equal(finish.code, 0, finish.text);
  assert.match(finish.text, /checked: the function refuses auto_sync_signing_key:/);
  assert.deepEqual(await vaultKeyNames(), [`auto_sync_signing_key:${label}a`]);
  assert.equal(readFunctionsEnv().AUTO_SYNC_SIGNING_SECRETS.split("|").length, 1);
  assert.deepEqual(await dispatchedRequestIsAccepted(), { status: 202, signatures: 1 });
});

Deno.test("emergency revocation: a new key replaces every other one", async () => {
  const oldSecrets = stackSecrets();
  const revoke = await keys("revoke", "--local-stack", "--label", `${label}b`);
  assert.equal(revoke.code, 0, revoke.text);
  stackSecrets().forEach((secret) => seenSecrets.add(secret));
  assert.deepEqual(await vaultKeyNames(), [`auto_sync_signing_key:${label}b`]);
  assert.notDeepEqual(stackSecrets(), oldSecrets);
  assert.match(revoke.text, /checked: the function refuses/);
  assert.deepEqual(await dispatchedRequestIsAccepted(), { status: 202, signatures: 1 });
});

Deno.test("a keyring is never written into a file git tracks", async () => {
  const readme = Deno.readTextFileSync(`${repo}README.md`);
  const result = await keys(
    "rotate-begin",
    "--env-file",
    `${repo}README.md`,
    "--db-url",
    dbUrl,
    "--label",
    `${label}c`,
  );
  assert.notEqual(result.code, 0);
  assert.match(result.text, /git tracks it/);
  assert.equal(Deno.readTextFileSync(`${repo}README.md`), readme);
  assert.equal(
    (await vaultKeyNames()).length,
    1,
    "Vault untouched when the verifier could not be updated",
  );
});

Deno.test("a failed `supabase secrets set` leaves no keyring file behind and Vault untouched", async () => {
  const home = Deno.makeTempDirSync({ prefix: "keys-home-" }); // no Supabase login here
  const tmp = Deno.makeTempDirSync({ prefix: "keys-tmp-" });
  // Deno's module cache is found through HOME unless DENO_DIR says where it is.
  const denoDir = Deno.env.get("DENO_DIR") ??
    `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/deno`;
  try {
    const before = await vaultKeyNames();
    const result = await keysIn(
      { env: { HOME: home, DENO_DIR: denoDir, TMPDIR: tmp, SUPABASE_ACCESS_TOKEN: "" } },
      "rotate-begin",
      "--project-ref",
      "abcdefghijklmnopqrst",
      "--db-url",
      dbUrl,
      "--label",
      `${label}d`,
    );
    assert.equal(result.code, 1, result.text);
    assert.match(result.text, /keys: supabase secrets set failed; nothing else was changed/);
    const keyringFiles = [...Deno.readDirSync(tmp)]
      .filter((entry) => entry.name.startsWith("auto-sync-keyring-"));
    assert.deepEqual(keyringFiles, [], "the temporary keyring file is deleted");
    assert.deepEqual(await vaultKeyNames(), before);
  } finally {
    Deno.removeSync(home, { recursive: true });
    Deno.removeSync(tmp, { recursive: true });
  }
});

Deno.test("a keyring is never written where git would see it, in whichever repository holds the file", async () => {
  const other = Deno.makeTempDirSync({ prefix: "keys-other-repo-" });
  const git = (...args: string[]) =>
    new Deno.Command("git", { args: ["-C", other, ...args], stdout: "null", stderr: "null" })
      .outputSync();
  try {
    git("init", "-q");
    Deno.writeTextFileSync(`${other}/tracked.env`, "A=1\n");
    Deno.writeTextFileSync(`${other}/.gitignore`, "ignored.env\n");
    git("add", "tracked.env", ".gitignore");
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "t");
    Deno.writeTextFileSync(`${other}/unignored.env`, "A=1\n");
    const attempt = (file: string) =>
      keysIn(
        { cwd: other }, // a relative path: resolved the way the write resolves it
        "rotate-begin",
        "--env-file",
        file,
        "--db-url",
        dbUrl,
        "--label",
        `${label}e`,
      );
    const tracked = await attempt("tracked.env");
    assert.equal(tracked.code, 1, tracked.text);
    assert.match(tracked.text, /refusing to write a secret into tracked\.env: git tracks it/);
    const unignored = await attempt("unignored.env");
    assert.equal(unignored.code, 1, unignored.text);
    assert.match(unignored.text, /git does not ignore it/);
    for (const file of ["tracked.env", "unignored.env"]) {
      assert.equal(Deno.readTextFileSync(`${other}/${file}`), "A=1\n");
    }
    assert.equal((await vaultKeyNames()).length, 1, "Vault untouched");
  } finally {
    Deno.removeSync(other, { recursive: true });
  }
});

Deno.test("no command printed a secret (only --print does)", async () => {
  const output = printed.join("\n");
  for (const secret of seenSecrets) {
    assert.equal(output.includes(secret.slice("whsec_".length)), false);
  }
  const shown = await keys("generate", "--print");
  assert.match(shown.text, /^whsec_[A-Za-z0-9+/]{43}=\s*$/);
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
