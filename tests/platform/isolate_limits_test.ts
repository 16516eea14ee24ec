/**
 * The local stack's functions live within the edge runtime's per-isolate limits
 * (local-stack/isolate_limits.ts): a gateway with small limits serves a probe function.
 */
import assert from "node:assert/strict";
import { threadCpuMs } from "../../local-stack/isolate_limits.ts";
import { testPorts } from "../../local-stack/urls.ts";
import { type GatewayProcess, startGateway } from "../support/gateway_process.ts";
import { throwawayProject } from "../support/throwaway_project.ts";

// /burn spends CPU time, not wall-clock time: on a loaded machine a busy loop timed by
// Date.now() gets less CPU than it asks for, and the limits count CPU.
const probe = `
import process from "node:process";
globalThis.addEventListener("beforeunload", () => console.error("probe " + Deno.pid + " got beforeunload"));
const kept: Uint8Array[] = [];
export default {
  fetch(request: Request) {
    const url = new URL(request.url);
    if (url.pathname.endsWith("/burn")) {
      const start = process.cpuUsage();
      const micros = Number(url.searchParams.get("ms")) * 1000;
      for (let used = 0; used < micros;) {
        const { user, system } = process.cpuUsage(start);
        used = user + system;
      }
    }
    if (url.pathname.endsWith("/alloc")) {
      kept.push(new Uint8Array(Number(url.searchParams.get("mb")) * 1024 * 1024).fill(1));
    }
    return Response.json({ pid: Deno.pid });
  },
};
`;

async function withProbe(limits: string[], body: (gateway: GatewayProcess) => Promise<void>) {
  const { gatewayArgs } = await throwawayProject({
    "supabase/config.toml": "[functions.probe]\nverify_jwt = false\n",
    "supabase/functions/probe/index.ts": probe,
  });
  const gateway = await startGateway(testPorts.platformGateway, [...gatewayArgs, ...limits]);
  try {
    await body(gateway);
  } finally {
    await gateway.stop();
  }
}

async function call(gateway: GatewayProcess, path = "") {
  const response = await fetch(`${gateway.functionsUrl}/probe${path}`);
  return { status: response.status, body: await response.json() };
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("wall clock: a new instance takes requests after half of it; the old one gets beforeunload, then is killed", async () => {
  await withProbe(
    ["--wall-clock-ms", "4000", "--cpu-soft-ms", "60000", "--cpu-hard-ms", "60000"],
    async (gateway) => {
      const first = await call(gateway);
      assert.equal(first.status, 200);
      assert.equal(
        (await call(gateway)).body.pid,
        first.body.pid,
        "one instance serves many requests",
      );
      await sleep(2_300);
      const second = await call(gateway);
      assert.notEqual(second.body.pid, first.body.pid, gateway.output());
      assert.ok(alive(first.body.pid), "a retired instance lives on until its wall clock ends");
      await sleep(2_200);
      assert.equal(alive(first.body.pid), false, gateway.output());
      const output = gateway.output();
      const warned = output.indexOf(`probe ${first.body.pid} got beforeunload`);
      const killed = output.indexOf("instance terminated: wall clock limit");
      assert.ok(warned >= 0 && killed > warned, output);
    },
  );
});

Deno.test("CPU adds up over an instance's requests: soft limit retires it, hard limit kills it", async () => {
  await withProbe(["--cpu-soft-ms", "700", "--cpu-hard-ms", "1400"], async (gateway) => {
    const first = await call(gateway);
    // Two requests that each stay under the soft limit but together pass it.
    await call(gateway, "/burn?ms=450");
    await call(gateway, "/burn?ms=450");
    await sleep(200);
    const next = await call(gateway);
    assert.notEqual(next.body.pid, first.body.pid, gateway.output());
    assert.match(gateway.output(), /instance retired: CPU soft limit/);
    // One request past the hard limit: the instance is killed under it.
    const burnt = await call(gateway, "/burn?ms=3000");
    assert.equal(burnt.status, 546, JSON.stringify(burnt));
    assert.equal(burnt.body.code, "WORKER_LIMIT");
    assert.equal(alive(next.body.pid), false);
    assert.match(gateway.output(), /instance terminated: CPU limit/);
    assert.equal((await call(gateway)).status, 200, "a new instance serves the next request");
  });
});

Deno.test("memory is V8 heap + external: an instance over the cap gets beforeunload, then ends", async () => {
  await withProbe(["--memory-mb", "96"], async (gateway) => {
    const first = await call(gateway);
    // 40 MB of ArrayBuffers count as external memory, not heap: RSS would show it too,
    // but only heap + external is what the runtime counts.
    await call(gateway, "/alloc?mb=40");
    await sleep(300);
    assert.ok(alive(first.body.pid), "under the cap");
    // 85 MB: past 90 % of 96 MiB (beforeunload), under the cap; then over it.
    await call(gateway, "/alloc?mb=45");
    await sleep(300);
    assert.ok(gateway.output().includes(`probe ${first.body.pid} got beforeunload`));
    assert.ok(alive(first.body.pid), "beforeunload comes first");
    await call(gateway, "/alloc?mb=20").catch(() => null);
    for (let waited = 0; alive(first.body.pid) && waited < 5_000; waited += 100) await sleep(100);
    assert.equal(alive(first.body.pid), false, gateway.output());
    const output = gateway.output();
    assert.ok(output.includes(`probe ${first.body.pid} got beforeunload`), output);
    assert.match(output, /Memory limit reached/);
    assert.equal((await call(gateway)).status, 200);
  });
});

// Beside the gateway's tests: Deno lets only --allow-all read another process's /proc.
Deno.test("the isolate thread's CPU time is the JavaScript thread's; a gone process reads null", async () => {
  // As the gateway runs functions: JavaScript on the process's main thread.
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "const until = Date.now() + 400; while (Date.now() < until) {} console.log('done'); " +
      "await new Promise((resolve) => setTimeout(resolve, 5000));",
    ],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  await reader.read(); // "done": the burn is over
  const burnt = threadCpuMs(child.pid)!;
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel();
  // At least part of the 400 ms burnt on a busy machine; boot CPU is counted too.
  assert.ok(burnt >= 100, `${burnt} ms`);
  assert.equal(threadCpuMs(child.pid), null);
});
