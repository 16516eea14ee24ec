/**
 * Key rotation under load, as SECURITY.md documents it, with zero valid requests
 * refused. Two keys of the test's own (never in Vault): `old` and `new`.
 *
 * cron-auto-sync runs as our own `deno serve` processes (a process cannot change
 * its environment, so a new keyring means a new process) behind a tiny round-robin
 * proxy in this test. Runs are created in SQL as dispatch() leaves them and signed
 * in SQL with explicit key arrays (auto_sync.sign over jsonb::text), while a few
 * workers send them through the proxy without pause:
 *
 *   0  verifier v1,old                signer [old]
 *   a  verifier v1,old|v1,new         start it, share traffic, drain and stop the old process
 *   b                                 signer [new, old]  (Vault holds both)
 *   c                                 signer [new]       (old Vault secret deleted)
 *   d  verifier v1,new                start it, share traffic, drain and stop the previous one
 *
 * Every request across the sequence must be accepted (202), and afterwards a
 * request signed with only the old key must be refused (401).
 */
import assert from "node:assert/strict";
import { generateSecret } from "../../functions-shared/wire/standard_webhooks.ts";
import { connect, dbUrl } from "../support/local_stack.ts";
import { testPorts } from "../../local-stack/urls.ts";
import { repositoryFunction, serveFunctionArgs } from "../../local-stack/function_import_map.ts";
import type { SignedRequest } from "../support/signed_requests.ts";
import {
  assertNoSecretIn,
  collectedBodies,
  Fixtures,
  post,
  type Target,
} from "../support/attack_support.ts";

const layout = repositoryFunction("cron-auto-sync"); // as deploy resolves it
const PROXY_PORT = testPorts.rotationProxy;
const PROXY: Target = { name: "rotation proxy", port: PROXY_PORT, path: "/cron-auto-sync" };

const sql = connect();
const fixtures = new Fixtures(sql);

interface FunctionProcess {
  name: string;
  port: number;
  child: Deno.ChildProcess;
  output: Promise<Deno.CommandOutput>;
  inFlight: number;
  stopped: boolean;
}

const processes: FunctionProcess[] = [];

async function startFunction(
  name: string,
  port: number,
  keyring: string,
): Promise<FunctionProcess> {
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    NO_COLOR: "1",
    SUPABASE_DB_URL: dbUrl,
    AUTO_SYNC_SIGNING_SECRETS: keyring,
  };
  if (Deno.env.get("DENO_DIR")) env.DENO_DIR = Deno.env.get("DENO_DIR")!;
  const child = new Deno.Command(Deno.execPath(), {
    args: [...serveFunctionArgs(port, layout), layout.entrypoint],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const served: FunctionProcess = {
    name,
    port,
    child,
    output: child.output(),
    inFlight: 0,
    stopped: false,
  };
  processes.push(served);
  const deadline = Date.now() + 90_000; // generous: the suite may load both cores
  while (true) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/`);
      await response.body?.cancel();
      if (response.status === 405) return served;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`Function process ${name} did not start on port ${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Waits for the process's requests to finish (and their background imports), then
 * stops it: SIGTERM, and SIGKILL if it is still waiting on idle keep-alive
 * connections after 2 s (nothing is in flight by then).
 */
async function drainAndStop(served: FunctionProcess): Promise<void> {
  while (served.inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  await new Promise((resolve) => setTimeout(resolve, 500)); // background "skipped" imports
  await stop(served);
}

async function stop(served: FunctionProcess): Promise<void> {
  if (served.stopped) return;
  served.stopped = true;
  served.child.kill("SIGTERM");
  const timer = setTimeout(() => {
    try {
      served.child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, 2_000);
  await served.output;
  clearTimeout(timer);
}

/** The round-robin proxy: traffic goes to `active` only; it counts requests in flight per process. */
let active: FunctionProcess[] = [];
let turn = 0;
const proxy = Deno.serve(
  { hostname: "127.0.0.1", port: PROXY_PORT, onListen: () => {} },
  async (request) => {
    const backend = active[turn++ % active.length];
    backend.inFlight++;
    try {
      const url = new URL(request.url);
      const response = await fetch(`http://127.0.0.1:${backend.port}${url.pathname}`, {
        method: request.method,
        headers: request.headers,
        body: await request.arrayBuffer(),
      });
      return new Response(await response.arrayBuffer(), {
        status: response.status,
        headers: response.headers,
      });
    } catch (error) {
      return Response.json({ proxy_error: (error as Error).message, backend: backend.name }, {
        status: 599,
      });
    } finally {
      backend.inFlight--;
    }
  },
);

const base64Key = (secret: string) => secret.slice("whsec_".length);

/** A run as dispatch() leaves it, its body as pg_net sends it, signed in SQL with exactly these keys. */
async function dispatchSigned(userId: string, keys: string[]): Promise<SignedRequest> {
  const [row] = await sql`
    with run as (
      insert into auto_sync.runs (user_id, trigger, status, scheduled_for, dispatched_at)
      values (${userId}, 'schedule', 'dispatched', now(), now())
      returning id
    ), claims as (
      select run.id, t.ts,
             auto_sync.request_claims(${userId}::uuid, run.id, t.ts, 300) as body
        from run, (select floor(extract(epoch from now()))::bigint as ts) t
    )
    select id::text as id, ts::text as ts, convert_to(body::text, 'UTF8') as body,
           auto_sync.sign(id::text, ts, body::text,
                          array(select decode(k, 'base64') from unnest(${keys}::text[]) with ordinality as u(k, o) order by o)) as signature
      from claims`;
  return {
    id: row.id,
    timestamp: row.ts,
    signature: row.signature,
    body: new Uint8Array(row.body),
  };
}

Deno.test({
  name:
    "rotation under load: old -> old|new -> sign both -> sign new -> new; no valid request refused, then old-only refused",
  // The function processes and the proxy outlive this test on purpose (stopped in the clean-up).
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const oldSecret = generateSecret();
  const newSecret = generateSecret();
  const users = await Promise.all(Array.from({ length: 4 }, () => fixtures.user("rotation")));
  for (const userId of users) {
    await sql`select auto_sync.enable(${userId}, '1 hour')`;
    await sql`update auto_sync.schedules set next_run_at = now() + interval '1 hour' where user_id = ${userId}`;
  }

  let phase = "0: verifier old, signer old";
  let signerKeys = [base64Key(oldSecret)];
  const results: { phase: string; status: number; detail?: string }[] = [];
  let driving = true;

  const worker = async (userId: string) => {
    while (driving) {
      const sentPhase = phase;
      try {
        const request = await dispatchSigned(userId, signerKeys);
        const answer = await post(request, { target: PROXY });
        results.push({
          phase: sentPhase,
          status: answer.status,
          detail: answer.status === 202 ? undefined : answer.text,
        });
      } catch (error) {
        results.push({ phase: sentPhase, status: 0, detail: (error as Error).message });
      }
    }
  };
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  let drivers: Promise<void>[] = [];
  try {
    const p1 = await startFunction("P1 old", testPorts.rotationFunctions[0], `v1,${oldSecret}`);
    active = [p1];
    drivers = users.map(worker);
    await pause(1_000);

    phase = "a: verifier old|new added beside old";
    const p2 = await startFunction(
      "P2 old|new",
      testPorts.rotationFunctions[1],
      `v1,${oldSecret}|v1,${newSecret}`,
    );
    active = [p1, p2];
    await pause(1_000);
    phase = "a: traffic moved to old|new";
    active = [p2];
    await drainAndStop(p1);
    await pause(500);

    phase = "b: signer signs with new and old";
    signerKeys = [base64Key(newSecret), base64Key(oldSecret)];
    await pause(1_000);

    phase = "c: signer signs with new only";
    signerKeys = [base64Key(newSecret)];
    await pause(1_000);

    phase = "d: verifier new added beside old|new";
    const p3 = await startFunction("P3 new", testPorts.rotationFunctions[2], `v1,${newSecret}`);
    active = [p2, p3];
    await pause(1_000);
    phase = "d: traffic moved to new only";
    active = [p3];
    await drainAndStop(p2);
    await pause(1_000);
  } finally {
    driving = false;
    await Promise.all(drivers);
  }

  const byPhase = new Map<string, Map<number, number>>();
  for (const result of results) {
    const statuses = byPhase.get(result.phase) ?? new Map<number, number>();
    statuses.set(result.status, (statuses.get(result.status) ?? 0) + 1);
    byPhase.set(result.phase, statuses);
  }
  console.log(
    `rotation: ${results.length} requests\n` +
      [...byPhase].map(([name, statuses]) =>
        `  ${name}: ${[...statuses].map(([s, n]) => `${n} x ${s}`).join(", ")}`
      ).join("\n"),
  );
  const refused = results.filter((result) => result.status !== 202);
  assert.deepEqual(
    refused.slice(0, 10),
    [],
    `${refused.length} of ${results.length} valid requests were not accepted`,
  );
  assert.ok(results.length >= 300, `hundreds of requests (${results.length})`);
  assert.equal(byPhase.size, 7, "every phase carried traffic");
  const runIds = await sql`
    select count(*)::int as n from auto_sync.runs where user_id = any(${users}::uuid[]) and accepted_at is not null`;
  assert.equal(runIds[0].n, results.length, "one accepted run per 202");

  // After (d): only the new key verifies.
  const oldOnly = await post(await dispatchSigned(users[0], [base64Key(oldSecret)]), {
    target: PROXY,
  });
  assert.equal(oldOnly.status, 401, oldOnly.text);
  const newOnly = await post(await dispatchSigned(users[0], [base64Key(newSecret)]), {
    target: PROXY,
  });
  assert.equal(newOnly.status, 202, newOnly.text);
  const oldThenNew = await post(
    await dispatchSigned(users[0], [base64Key(oldSecret), base64Key(newSecret)]),
    { target: PROXY },
  );
  assert.equal(oldThenNew.status, 202, oldThenNew.text);

  // Neither key, in any form, came back in a response or went to the processes' logs.
  const logs: string[] = [];
  for (const served of processes) {
    await stop(served);
    const output = await served.output;
    logs.push(new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr));
  }
  assert.ok(logs.join("").includes("Rejected signed request"), "the old-only refusal was logged");
  assertNoSecretIn(logs, "rotation function logs", [oldSecret, newSecret]);
  assertNoSecretIn(collectedBodies, "rotation responses", [oldSecret, newSecret]);
});

Deno.test({
  name: "clean up: stop the function processes and the proxy, remove this file's users",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    try {
      for (const served of processes) await stop(served);
      await proxy.shutdown();
      await fixtures.cleanup();
    } finally {
      await sql.end();
    }
  },
});
