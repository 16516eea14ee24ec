/**
 * The functions resolve their dependencies as `supabase functions deploy` will: each
 * with the map the CLI's rule picks (local-stack/function_import_map.ts), never the
 * root deno.json. The local gateway starts them that way, so a function that would
 * not bundle on deploy does not start on the stack either.
 */
import assert from "node:assert/strict";
import { staleFunctionConfigs } from "../../ops/function_import_maps.ts";
import { startGateway } from "../support/gateway_process.ts";
import { throwawayProject } from "../support/throwaway_project.ts";
import { testPorts } from "../../local-stack/urls.ts";

const ZOD = "npm:zod@4.6.7";
const usesZod = `import { z } from "zod";
export default { fetch: () => Response.json({ ok: z.literal("ok").parse("ok") }) };
`;

Deno.test("every function's deno.json pins exactly its imports, as the root deno.json pins them", async () => {
  assert.deepEqual(await staleFunctionConfigs(), []);
});

Deno.test("a function whose import map lacks a specifier fails to start, naming it; the root deno.json does not help", async () => {
  const { gatewayArgs } = await throwawayProject({
    // The root config maps zod: deploy never reads it, and neither does the stack.
    "deno.json": JSON.stringify({ imports: { zod: ZOD } }),
    "supabase/config.toml": "[functions.mapped]\nverify_jwt = false\n" +
      "[functions.short-map]\nverify_jwt = false\n[functions.no-map]\nverify_jwt = false\n",
    "supabase/functions/mapped/index.ts": usesZod,
    "supabase/functions/mapped/deno.json": JSON.stringify({ imports: { zod: ZOD } }),
    "supabase/functions/short-map/index.ts": usesZod,
    "supabase/functions/short-map/deno.json": JSON.stringify({ imports: {} }),
    "supabase/functions/no-map/index.ts": usesZod,
  });
  const gateway = await startGateway(testPorts.platformGateway, gatewayArgs);
  try {
    const exited = (name: string) => gateway.output().includes(`Function \\"${name}\\" exited`);
    for (
      let waited = 0;
      !(exited("short-map") && exited("no-map")) && waited < 30_000;
      waited += 100
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const health = await fetch(`${gateway.url}/health`);
    assert.equal(health.status, 503);
    await health.body?.cancel();
    let mapped = await fetch(`${gateway.functionsUrl}/mapped`);
    for (let waited = 0; mapped.status === 502 && waited < 30_000; waited += 100) {
      await mapped.body?.cancel(); // not listening yet
      await new Promise((resolve) => setTimeout(resolve, 100));
      mapped = await fetch(`${gateway.functionsUrl}/mapped`);
    }
    assert.equal(mapped.status, 200);
    assert.deepEqual(await mapped.json(), { ok: "ok" });
    for (const name of ["short-map", "no-map"]) {
      const response = await fetch(`${gateway.functionsUrl}/${name}`);
      assert.equal(response.status, 503, name);
      assert.equal((await response.json()).code, "BOOT_ERROR", name);
      assert.ok(exited(name), name);
    }
    // Deno's own words for an unmapped bare specifier, once per failing function.
    const unmapped = gateway.output().match(/"zod"[^\n]*(not in import map|not a dependency)/g);
    assert.equal(unmapped?.length, 2, gateway.output());
  } finally {
    await gateway.stop();
  }
});
