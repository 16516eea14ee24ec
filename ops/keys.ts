/**
 * Signing-key management: `deno task keys <command>`.
 *
 *   status          the keys in Vault (the signer) and in the function's keyring, by fingerprint
 *   generate        a new whsec_ secret (shown only with --print)
 *   rotate-begin    new key: verifier accepts it first, then Vault signs with old and new
 *   rotate-finish   old keys leave Vault, then leave the verifier
 *   revoke          emergency: a new key replaces every other one, verifier first
 *
 * Where the function's keyring (AUTO_SYNC_SIGNING_SECRETS) goes, one of:
 *   --project-ref <ref>   `supabase secrets set` from a temporary 0600 env file, deleted after
 *   --env-file <path>     replace the line in a dotenv file (refused if git tracks the file)
 *   --local-stack         the local stack: its functions.env, then reload its functions
 *   --print               print the keyring value: the only way a secret reaches the terminal
 * Database: --db-url <url> (or SUPABASE_DB_URL); with --local-stack, the stack's.
 * With --functions-url <.../functions/v1> (default for --local-stack) each step is
 * checked with a signed probe before the next one starts.
 */
import postgres from "postgres";
import { connectOps } from "./database.ts";
import { parseArgs } from "node:util";
import { dirname, resolve } from "node:path";
import { generateSecret } from "../functions-shared/wire/standard_webhooks.ts";
import { parseEnvFile } from "../local-stack/env_file.ts";
import * as localStack from "../local-stack/urls.ts";
import { fingerprint, keyBytes, sendSignedProbe } from "./probe.ts";

const repo = new URL("../", import.meta.url).pathname;
const VAULT_PREFIX = "auto_sync_signing_key:";
const KEYRING_VARIABLE = "AUTO_SYNC_SIGNING_SECRETS";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    "db-url": { type: "string" },
    label: { type: "string" },
    "project-ref": { type: "string" },
    "env-file": { type: "string" },
    "local-stack": { type: "boolean", default: false },
    print: { type: "boolean", default: false },
    "functions-url": { type: "string" },
  },
});

const say = (line: string) => console.log(line);

/** A refusal: thrown, not Deno.exit, so every `finally` (temporary keyring file,
 * database connection) runs before the tool exits with status 1. */
class KeyToolError extends Error {}
function fail(message: string): never {
  throw new KeyToolError(message);
}

interface VaultKey {
  id: string;
  name: string;
  secret: string;
  created_at: Date;
}

const describe = (secret: string) => fingerprint(keyBytes(secret));

function connectDb() {
  const url = values["local-stack"]
    ? localStack.dbUrl
    : values["db-url"] ?? Deno.env.get("SUPABASE_DB_URL");
  if (!url) fail("no database: pass --db-url <postgres url> (or set SUPABASE_DB_URL)");
  return connectOps(url);
}

async function vaultKeys(sql: postgres.Sql): Promise<VaultKey[]> {
  return await sql<VaultKey[]>`
    select id, name, decrypted_secret as secret, created_at from vault.decrypted_secrets
     where starts_with(name, ${VAULT_PREFIX}) order by created_at desc, name`;
}

function functionsUrl(): string | undefined {
  return values["functions-url"] ??
    (values["local-stack"] ? localStack.functionsUrl : undefined);
}

/**
 * Why a secret must not be written to `path`, or null. Asks the git work tree that
 * holds the file (whichever repository that is), about the same absolute path the
 * write uses: refused when git tracks the file or would add it (inside a work tree
 * and not ignored).
 */
async function gitExposure(path: string): Promise<string | null> {
  const absolute = resolve(path);
  const git = async (...args: string[]) =>
    (await new Deno.Command("git", {
      args: ["-C", dirname(absolute), ...args],
      stdout: "null",
      stderr: "null",
    })
      .output()
      .catch(() => ({ code: 128 }))).code;
  if (await git("rev-parse", "--is-inside-work-tree") !== 0) return null;
  if (await git("ls-files", "--error-unmatch", "--", absolute) === 0) return "git tracks it";
  if (await git("check-ignore", "-q", "--", absolute) !== 0) return "git does not ignore it";
  return null;
}

function replaceEnvLine(path: string, value: string) {
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch { /* a new file */ }
  const lines = text.split("\n").filter((line) =>
    line !== "" && !line.startsWith(`${KEYRING_VARIABLE}=`)
  );
  lines.unshift(`${KEYRING_VARIABLE}=${value}`);
  Deno.writeTextFileSync(path, lines.join("\n") + "\n", { mode: 0o600 });
  Deno.chmodSync(path, 0o600);
}

/** Hands the verifier its keyring, wherever the function reads it from. */
async function setFunctionKeyring(secrets: string[]) {
  const value = secrets.map((secret) => `v1,${secret}`).join("|");
  const described = secrets.map(describe).join(", ");
  if (values.print) {
    say(`${KEYRING_VARIABLE}=${value}`);
  } else if (values["project-ref"]) {
    const file = Deno.makeTempFileSync({ prefix: "auto-sync-keyring-", suffix: ".env" });
    try {
      Deno.chmodSync(file, 0o600);
      Deno.writeTextFileSync(file, `${KEYRING_VARIABLE}=${value}\n`);
      const result = await new Deno.Command(`${repo}tools/node_modules/.bin/supabase`, {
        args: ["secrets", "set", "--env-file", file, "--project-ref", values["project-ref"]],
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      if (result.code !== 0) fail("supabase secrets set failed; nothing else was changed");
    } finally {
      Deno.removeSync(file);
    }
  } else if (values["env-file"] || values["local-stack"]) {
    const path = values["env-file"] ?? `${localStack.stateDir}/functions.env`;
    const exposure = await gitExposure(path);
    if (exposure) fail(`refusing to write a secret into ${path}: ${exposure}`);
    replaceEnvLine(path, value);
    if (values["local-stack"]) {
      const reload = await new Deno.Command(`${repo}scripts/stack`, {
        args: ["reload"],
        stdout: "null",
        stderr: "inherit",
      }).output();
      if (reload.code !== 0) fail("could not reload the local stack's functions");
    }
  } else {
    fail(
      "say where the function's keyring goes: --project-ref, --env-file, --local-stack or --print",
    );
  }
  say(`verifier keyring set: ${described}`);
}

/** Waits until the deployed function accepts a probe signed only with `secret`. */
async function expectAccepted(secret: string, what: string) {
  const url = functionsUrl();
  if (!url) {
    say(`(not checked: pass --functions-url to probe that the function ${what})`);
    return;
  }
  for (let attempt = 0; attempt < 30; attempt++) {
    const probe = await sendSignedProbe(`${url}/cron-auto-sync`, [keyBytes(secret)]).catch(() =>
      null
    );
    if (probe?.verdict === "accepted") return say(`checked: the function ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  fail(
    `the function does not accept key ${
      describe(secret)
    } yet; nothing more was changed. Check the secret, then run the step again.`,
  );
}

async function expectRefused(secret: string, what: string) {
  const url = functionsUrl();
  if (!url) return;
  const probe = await sendSignedProbe(`${url}/cron-auto-sync`, [keyBytes(secret)]);
  if (probe.verdict !== "refused") {
    fail(`the function still accepts key ${describe(secret)} (HTTP ${probe.status})`);
  }
  say(`checked: the function ${what}`);
}

function requireLabel(): string {
  const label = values.label ?? new Date().toISOString().slice(0, 16).replace(/[-:T]/g, "");
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(label)) {
    fail(`invalid label "${label}": letters, digits, _ . - only`);
  }
  return label;
}

async function status() {
  const sql = connectDb();
  const keys = await vaultKeys(sql);
  await sql.end();
  say(`Vault (the signer): ${keys.length} key(s)`);
  for (const key of keys) {
    say(`  ${key.name}  ${describe(key.secret)}  created ${key.created_at.toISOString()}`);
  }
  const envPath = values["env-file"] ??
    (values["local-stack"] ? `${localStack.stateDir}/functions.env` : undefined);
  const keyring = envPath
    ? parseEnvFile(Deno.readTextFileSync(envPath))[KEYRING_VARIABLE]
    : Deno.env.get(KEYRING_VARIABLE);
  if (keyring) {
    const verifier = keyring.split("|").map((entry) => describe(entry));
    say(`Verifier keyring: ${verifier.join(", ")}`);
    const unverifiable = keys.filter((key) => !verifier.includes(describe(key.secret)));
    if (unverifiable.length > 0) {
      say(
        `WARNING: Vault signs with keys the verifier lacks: ${
          unverifiable.map((key) => key.name).join(", ")
        }`,
      );
    }
  }
}

async function rotateBegin() {
  const label = requireLabel();
  const sql = connectDb();
  try {
    const current = await vaultKeys(sql);
    if (current.length >= 2) {
      fail("a rotation is already in progress (two keys in Vault): run rotate-finish first");
    }
    if (current.some((key) => key.name === VAULT_PREFIX + label)) {
      fail(`a key labelled "${label}" exists`);
    }
    const next = generateSecret();
    say(`new key ${describe(next)} (${VAULT_PREFIX}${label})`);
    say("1/2 the verifier accepts old and new");
    await setFunctionKeyring([...current.map((key) => key.secret), next]);
    await expectAccepted(next, "accepts the new key");
    say("2/2 the signer signs with old and new");
    await sql`select vault.create_secret(${next}, ${
      VAULT_PREFIX + label
    }, 'cron-auto-sync signing key')`;
    say("Rotation started. Once every function instance runs with both keys, run rotate-finish.");
  } finally {
    await sql.end();
  }
}

async function rotateFinish() {
  const sql = connectDb();
  try {
    const [newest, ...old] = await vaultKeys(sql);
    if (!newest) fail("no signing key in Vault");
    if (old.length === 0) return say(`nothing to finish: Vault holds only ${newest.name}`);
    say(
      `1/2 old key(s) leave Vault: ${
        old.map((key) => `${key.name} ${describe(key.secret)}`).join(", ")
      }`,
    );
    await sql`delete from vault.secrets where id = any(${old.map((key) => key.id)}::uuid[])`;
    say("2/2 old key(s) leave the verifier");
    await setFunctionKeyring([newest.secret]);
    await expectAccepted(newest.secret, "accepts the new key");
    for (const key of old) await expectRefused(key.secret, `refuses ${key.name}`);
    say("Rotation finished.");
  } finally {
    await sql.end();
  }
}

async function revoke() {
  const label = requireLabel();
  const sql = connectDb();
  try {
    const current = await vaultKeys(sql);
    const next = generateSecret();
    say(
      `EMERGENCY: every current key is revoked; new key ${
        describe(next)
      } (${VAULT_PREFIX}${label})`,
    );
    say(
      "1/2 the verifier accepts only the new key (requests signed with the old ones fail from now)",
    );
    await setFunctionKeyring([next]);
    say("2/2 Vault holds only the new key");
    await sql.begin(async (tx) => {
      await tx`delete from vault.secrets where starts_with(name, ${VAULT_PREFIX})`;
      await tx`select vault.create_secret(${next}, ${
        VAULT_PREFIX + label
      }, 'cron-auto-sync signing key')`;
    });
    await expectAccepted(next, "accepts the new key");
    for (const key of current) await expectRefused(key.secret, `refuses ${key.name}`);
    say("Revoked. Runs dispatched with the old key before this will be refused (401).");
  } finally {
    await sql.end();
  }
}

async function main() {
  switch (positionals[0]) {
    case "status":
      await status();
      break;
    case "generate": {
      const secret = generateSecret();
      say(
        values.print ? secret : `generated ${describe(secret)} (not shown: add --print to see it)`,
      );
      break;
    }
    case "rotate-begin":
      await rotateBegin();
      break;
    case "rotate-finish":
      await rotateFinish();
      break;
    case "revoke":
      await revoke();
      break;
    default: {
      const usage = Deno.readTextFileSync(new URL(import.meta.url)).split("*/")[0];
      console.error(usage.replace(/^\/\*\*\n|^ \* ?/gm, ""));
      Deno.exit(2);
    }
  }
}

try {
  await main();
} catch (error) {
  if (!(error instanceof KeyToolError)) throw error;
  console.error(`keys: ${error.message}`);
  Deno.exit(1);
}
