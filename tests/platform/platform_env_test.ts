/**
 * What a function finds in its environment on the stack is what the platform
 * injects in each project mode (README "Platform facts", with sources): never a
 * SUPABASE_JWT_SECRET, SUPABASE_JWKS as a bare array, and the user's secrets minus
 * reserved SUPABASE_ names, which are skipped with the CLI's own warning.
 */
import assert from "node:assert/strict";
import { startGateway } from "../support/gateway_process.ts";
import { throwawayProject } from "../support/throwaway_project.ts";
import { testPorts } from "../../local-stack/urls.ts";
import type { ProjectMode } from "../../local-stack/project.ts";

const MODES: ProjectMode[] = ["hosted-asymmetric", "hosted-legacy", "self-hosted"];

// Reports which variables it sees (names only: values stay in the process).
const envProbe = `export default {
  fetch: () => Response.json({
    names: Object.keys(Deno.env.toObject()).sort(),
    jwks: Deno.env.get("SUPABASE_JWKS") === undefined ? null : JSON.parse(Deno.env.get("SUPABASE_JWKS")),
  }),
};
`;

const hostedNames = [
  "DENO_DEPLOYMENT_ID",
  "SB_EXECUTION_ID",
  "SB_REGION",
  "SUPABASE_ANON_KEY",
  "SUPABASE_DB_URL",
  "SUPABASE_JWKS",
  "SUPABASE_PUBLISHABLE_KEYS",
  "SUPABASE_SECRET_KEYS",
  "SUPABASE_SERVICE_ROLE_KEY",
  "SUPABASE_URL",
];
const expectedNames: Record<ProjectMode, string[]> = {
  "hosted-asymmetric": hostedNames,
  "hosted-legacy": hostedNames,
  "self-hosted": [
    "JWT_SECRET",
    "SUPABASE_ANON_KEY",
    "SUPABASE_DB_URL",
    "SUPABASE_PUBLIC_URL",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_URL",
    "VERIFY_JWT",
  ],
};
const PROCESS_NAMES = ["DENO_DIR", "HOME", "NO_COLOR", "PATH"];

for (const mode of MODES) {
  Deno.test(`${mode}: the function sees the platform's variables and the user's secrets, no reserved names`, async () => {
    const { project, gatewayArgs } = await throwawayProject({
      "supabase/functions/env-probe/index.ts": envProbe,
      "supabase/functions/env-probe/deno.json": "{}",
      "supabase/config.toml": "[functions.env-probe]\nverify_jwt = false\n",
    }, {
      envFile: [
        "MY_SECRET=kept",
        "SUPABASE_JWT_SECRET=a-secret-the-user-tries-to-set",
        'SUPABASE_JWKS={"keys":[]}',
        "",
      ].join("\n"),
    });
    const gateway = await startGateway(testPorts.platformGateway, [
      ...gatewayArgs,
      "--mode",
      mode,
      "--db-url",
      "postgresql://unused@127.0.0.1:1/postgres",
    ]);
    try {
      let response = await fetch(`${gateway.functionsUrl}/env-probe`);
      for (let waited = 0; response.status === 502 && waited < 30_000; waited += 100) {
        await response.body?.cancel(); // not listening yet
        await new Promise((resolve) => setTimeout(resolve, 100));
        response = await fetch(`${gateway.functionsUrl}/env-probe`);
      }
      assert.equal(response.status, 200);
      const seen = await response.json() as { names: string[]; jwks: unknown };
      const names = seen.names.filter((name) => !PROCESS_NAMES.includes(name));
      assert.deepEqual(names, [...expectedNames[mode], "MY_SECRET"].sort());
      assert.ok(!seen.names.includes("SUPABASE_JWT_SECRET"));
      // The CLI's warning, word for word, for each reserved name in the env file.
      for (const name of ["SUPABASE_JWT_SECRET", "SUPABASE_JWKS"]) {
        assert.ok(
          gateway.output().includes(`Env name cannot start with SUPABASE_, skipping: ${name}\n`),
          gateway.output(),
        );
      }
      // SUPABASE_JWKS is a bare array, the same keys Auth serves at its JWKS endpoint.
      const published = await (await fetch(`${gateway.url}/auth/v1/.well-known/jwks.json`)).json();
      if (mode === "self-hosted") {
        assert.equal(seen.jwks, null);
      } else {
        assert.deepEqual(seen.jwks, published.keys);
        assert.deepEqual(
          seen.jwks,
          mode === "hosted-asymmetric" ? [project.signingKey.publicJwk] : [],
        );
      }
    } finally {
      await gateway.stop();
    }
  });
}
