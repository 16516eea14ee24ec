/**
 * The environment a function gets, per project mode, exactly as the platform
 * injects it (sources in README "Platform facts"), plus the user's secrets.
 */
import { type ProjectMode, publishedKeys, type StackProject } from "./project.ts";

/** What the platform itself sets. Never SUPABASE_JWT_SECRET: no Supabase mode injects it. */
export function injectedEnv(
  project: StackProject,
  options: {
    mode: ProjectMode;
    supabaseUrl: string;
    dbUrl?: string;
    functionName?: string;
    /** Self-hosted: the `main` router's VERIFY_JWT (README sets it false). */
    verifyJwt?: boolean;
  },
): Record<string, string> {
  const { mode, supabaseUrl, dbUrl, functionName = "function", verifyJwt = false } = options;
  const common = {
    SUPABASE_URL: supabaseUrl,
    ...(dbUrl ? { SUPABASE_DB_URL: dbUrl } : {}),
    SUPABASE_ANON_KEY: project.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: project.serviceRoleKey,
  };
  if (mode === "self-hosted") {
    // docker/docker-compose.yml, service `functions` (supabase/supabase).
    return {
      ...common,
      JWT_SECRET: project.jwtSecret,
      SUPABASE_PUBLIC_URL: supabaseUrl,
      // One switch for every function behind the `main` router; README has it false
      // because cron-auto-sync is called without a JWT (import-emails checks its own).
      VERIFY_JWT: String(verifyJwt),
    };
  }
  return {
    ...common,
    // A bare array, as hosted projects get it (empty on the legacy secret).
    SUPABASE_JWKS: JSON.stringify(publishedKeys(project, mode)),
    SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: project.publishableKey }),
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: project.secretKey }),
    SB_REGION: "local",
    SB_EXECUTION_ID: crypto.randomUUID(),
    DENO_DEPLOYMENT_ID: `local_${functionName}_1`, // {project_ref}_{function_id}_{version}
  };
}

/** The CLI's words when `supabase secrets set` or `functions serve --env-file` skip a name. */
export const reservedNameWarning = (name: string) =>
  `Env name cannot start with SUPABASE_, skipping: ${name}`;

/** The user's secrets without the reserved SUPABASE_ names, which the CLI skips with a warning. */
export function userSecrets(
  secrets: Record<string, string>,
  warn: (message: string) => void = console.error,
): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(secrets)) {
    if (name.startsWith("SUPABASE_")) warn(reservedNameWarning(name));
    else kept[name] = value;
  }
  return kept;
}
