/**
 * Functions gateway STAND-IN (local stack only): serves every function in
 * supabase/functions at http://127.0.0.1:<port>/functions/v1/<name>, Supabase's
 * local URL shape.
 *
 * Each function runs in its own `deno serve` process with only its own environment
 * (what the platform injects in the project mode, platform_env.ts, plus the secrets
 * from --env-file minus reserved SUPABASE_ names), as separate edge workers would, and
 * resolves its imports with the map `supabase functions deploy` would pick
 * (function_import_map.ts), never the root deno.json. The gateway runs the platform's
 * JWT check (platform_jwt_check.ts) where the mode runs one: hosted, `verify_jwt` from
 * supabase/config.toml, the legacy check that refuses asymmetric user tokens;
 * self-hosted, the `main` router's one VERIFY_JWT for all (--verify-jwt). It also
 * answers Auth's JWKS and /user routes at $SUPABASE_URL/auth/v1 (auth_stand_in.ts).
 *
 * Each function process is one edge-runtime isolate and lives within its limits
 * (isolate_limits.ts, sources there): it takes requests until half its wall clock or
 * its CPU soft limit, then a new instance takes the new ones while it finishes its
 * work; `beforeunload` comes before its wall clock, CPU or memory runs out; at the
 * limit it is killed. Several requests may land in one instance and share its budget.
 *
 *   deno run --allow-all gateway.ts \
 *     --port <STACK_GATEWAY_PORT> --db-url <postgres url> --env-file <state>/functions.env \
 *     [--project <state>/project.json] [--mode hosted-asymmetric|hosted-legacy|self-hosted]
 *     [--verify-jwt true|false]   (self-hosted: the main router's VERIFY_JWT; default false)
 *     [--wall-clock-ms N] [--cpu-soft-ms N] [--cpu-hard-ms N] [--memory-mb N] [--beforeunload-pct N]
 * (--allow-all: Deno lets nothing less read the functions' CPU time in /proc/<pid>.)
 *
 * The parts: gateway_flags.ts (flags and environment), function_supervisor.ts (the
 * instances and their limits), router.ts (routes, verify_jwt, the platform's error
 * answers); this file wires them to the database and the ports.
 */
import postgres from "postgres";
import { createAuthStandIn } from "./auth_stand_in.ts";
import { startFunctions } from "./function_supervisor.ts";
import { functionNames, readGatewayConfig, verifiesJwt } from "./gateway_flags.ts";
import { hostedJwtCheck, mainRouterJwtCheck } from "./platform_jwt_check.ts";
import { createRouter } from "./router.ts";
import { functionPort } from "./urls.ts";

const config = readGatewayConfig(Deno.args, Deno.env.toObject());
const { port, project, mode } = config;
const sql = config.dbUrl ? postgres(config.dbUrl, { max: 2, onnotice: () => {} }) : undefined;
const names = functionNames(config.functionsDir);
const supervisor = startFunctions(config, names);
const router = createRouter({
  supervisor,
  authRoutes: createAuthStandIn({ project, mode, sql }),
  platformCheck(name, request) {
    if (!verifiesJwt(config, name)) return Promise.resolve(null);
    return mode === "self-hosted"
      // The router reads the container's environment: JWT_SECRET, and SUPABASE_JWKS,
      // which the compose file does not set (so asymmetric tokens are refused there).
      ? mainRouterJwtCheck(request, { jwtSecret: project.jwtSecret })
      : hostedJwtCheck(request, { legacySecret: project.jwtSecret });
  },
});

Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, router.gateway);
// Each function also answers on its own port, functionPort(port, index), without the
// gateway's JWT check (tests reach "the function itself" there), through the same instances.
for (const [index, name] of names.entries()) {
  Deno.serve(
    { hostname: "127.0.0.1", port: functionPort(port, index), onListen: () => {} },
    router.direct(supervisor.functions.get(name)!),
  );
}

const stop = () => {
  supervisor.stopAll();
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
