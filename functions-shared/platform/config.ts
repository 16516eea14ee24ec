/**
 * The functions' configuration: every environment variable they read, its default
 * and its bounds, in one zod schema (VARIABLES). Each handler parses its environment
 * once, at start-up, with cronAutoSyncConfig or importEmailsConfig and hands the typed
 * result down; no other module reads the environment. Invalid or missing values throw
 * a ConfigError naming every problem at once, without echoing a secret's value.
 * README's "Function environment" table is held to this file by config_test.ts.
 */
import { z } from "zod";
import { KeyringError, parseKeyring, type SigningKey } from "../wire/standard_webhooks.ts";
import { isAllowedEndpoint } from "../oauth/bounded_fetch.ts";
import { MICROSOFT_TENANT } from "../oauth/providers.ts";

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** A JSON Web Key as SUPABASE_JWKS holds it (checked by Supabase's client when used). */
export type Jwk = Record<string, unknown>;

/** One OAuth client registration at a provider (the function's secrets only). */
export interface OAuthClientConfig {
  clientId: string;
  clientSecret: string;
}

/** The providers an operator registered the kit with; a provider left out is not offered. */
export interface OAuthConfig {
  google?: OAuthClientConfig;
  microsoft?: OAuthClientConfig & { tenant: string };
  /** A provider from its OpenID discovery document (the operator's issuer). */
  generic?: OAuthClientConfig & {
    issuer: string;
    scopes: string[];
    imap: { host: string; port: number };
  };
}

export interface ImporterConfig {
  imap: { caPem?: string; allowPrivateHosts: boolean; allowPlaintext: boolean };
  /** OAuth mailboxes' refresh tokens are redeemed with these clients. */
  oauth: OAuthConfig;
  /** One run's budget (import_run.ts ImportLimits). */
  limits: { maxMessages: number; maxSeconds: number };
  /** One function instance's budget, shared by its runs (isolate_budget.ts). */
  isolate: { wallClockSeconds: number; maxConcurrentRuns: number; maxMessages: number };
}

export interface UserAuthConfig {
  supabaseUrl: string;
  /** The key Auth expects in `apikey`: the default publishable key, another one, or anon. */
  apiKey: string;
  /** Keys that verify user tokens locally; none on legacy-secret and self-hosted projects. */
  jwks: Jwk[];
}

export interface CronAutoSyncConfig {
  databaseUrl: string;
  keyring: SigningKey[];
  importer: ImporterConfig;
}

export interface OAuthConnectConfig {
  databaseUrl: string;
  auth: UserAuthConfig;
  oauth: OAuthConfig;
  /** The exact redirect URI registered at every provider: <SUPABASE_URL>/functions/v1/oauth-callback. */
  redirectUri: string;
  /** The app URLs the callback may send the browser back to (exact match). */
  returnUrls: string[];
}

export interface ImportEmailsConfig {
  databaseUrl: string;
  auth: UserAuthConfig;
  importer: ImporterConfig;
}

// Issue messages say "{name}"; the variable's name is put in by configError, so each
// variable is named once (its key below).
const NAME = "{name}";

function fail(ctx: z.RefinementCtx, message: string): never {
  ctx.addIssue({ code: "custom", message });
  return z.NEVER as never;
}

const optionalText = () => z.string().optional().transform((value) => value?.trim() || undefined);

function required(why: string) {
  return z.string().optional().transform((value, ctx) =>
    value?.trim() ? value.trim() : fail(ctx, `Missing ${NAME}: ${why}`)
  );
}

/** A whole number from 1 to 9,999,999; unset or empty is the default. */
function positiveInteger(fallback: number) {
  return z.string().optional().transform((value, ctx) => {
    if (value === undefined || value === "") return fallback;
    if (!/^[1-9][0-9]{0,6}$/.test(value)) {
      return fail(ctx, `Invalid ${NAME}: "${value.slice(0, 20)}" is not a positive integer`);
    }
    return Number(value);
  });
}

/** On only when exactly "true" (anything else keeps the safe default, off). */
const flag = () => z.string().optional().transform((value) => value === "true");

/** A JSON value, or undefined when unset or empty; unparsable JSON is `invalid`. */
function json(value: string | undefined, invalid: symbol): unknown {
  if (!value?.trim()) return undefined;
  try {
    return JSON.parse(value);
  } catch {
    return invalid;
  }
}

const INVALID = Symbol("invalid JSON");

/** Every variable a function reads. Which function reads which: the lists below. */
export const VARIABLES = {
  SUPABASE_DB_URL: required("the functions need a database URL"),
  AUTO_SYNC_SIGNING_SECRETS: z.string().optional().transform((value, ctx) => {
    try {
      return parseKeyring(value, NAME);
    } catch (error) {
      // KeyringError messages never hold a secret (standard_webhooks_test.ts).
      if (error instanceof KeyringError) return fail(ctx, error.message);
      throw error;
    }
  }),
  IMAP_TLS_CA: optionalText().transform((pem, ctx) =>
    pem && !pem.includes("-----BEGIN CERTIFICATE-----")
      ? fail(ctx, `Invalid ${NAME}: expected a PEM certificate`)
      : pem
  ),
  IMAP_ALLOW_PRIVATE_HOSTS: flag(),
  IMAP_ALLOW_PLAINTEXT: flag(),
  IMPORT_MAX_MESSAGES: positiveInteger(5000),
  IMPORT_MAX_SECONDS: positiveInteger(100),
  // Unset: 150 (hosted free plan), or 60 where VERIFY_JWT says the self-hosted `main`
  // router runs the function (SELF_HOSTED_WALL_CLOCK_SECONDS).
  FUNCTION_WALL_CLOCK_SECONDS: positiveInteger(150),
  IMPORT_MAX_CONCURRENT_RUNS: positiveInteger(4),
  IMPORT_MAX_MESSAGES_PER_INSTANCE: positiveInteger(9000),
  SUPABASE_URL: required("cannot verify user tokens"),
  SUPABASE_JWKS: z.string().optional().transform((value, ctx) => {
    // Hosted projects inject a bare array of public keys (empty on projects still on
    // the legacy secret); the CLI a key set ({"keys": [...]}); self-hosted nothing.
    const parsed = json(value, INVALID);
    if (parsed === undefined) return [] as Jwk[];
    const keys = Array.isArray(parsed) ? parsed : (parsed as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys) || !keys.every((key) => typeof key === "object" && key !== null)) {
      return fail(
        ctx,
        `Invalid ${NAME}: expected keys as a JSON array ([...]) or a key set ({"keys": [...]})`,
      );
    }
    return keys as Jwk[];
  }),
  SUPABASE_PUBLISHABLE_KEYS: z.string().optional().transform((value, ctx) => {
    // Hosted injects every publishable key by name: the default one, else another one.
    const parsed = json(value, INVALID);
    if (parsed === undefined) return undefined;
    const keys = parsed && typeof parsed === "object" && !Array.isArray(parsed)
      ? Object.entries(parsed)
      : null;
    if (!keys || !keys.every(([, key]) => typeof key === "string")) {
      return fail(
        ctx,
        `Invalid ${NAME}: expected a JSON object of keys ({"default": "sb_publishable_..."})`,
      );
    }
    const usable = keys.filter(([, key]) => key) as [string, string][];
    return (usable.find(([name]) => name === "default") ?? usable[0])?.[1];
  }),
  SUPABASE_ANON_KEY: optionalText(),
  OAUTH_GOOGLE_CLIENT_ID: optionalText(),
  OAUTH_GOOGLE_CLIENT_SECRET: optionalText(),
  OAUTH_MICROSOFT_CLIENT_ID: optionalText(),
  OAUTH_MICROSOFT_CLIENT_SECRET: optionalText(),
  OAUTH_MICROSOFT_TENANT: optionalText().transform((tenant, ctx) =>
    tenant === undefined ? "common" : MICROSOFT_TENANT.test(tenant) ? tenant : fail(
      ctx,
      `Invalid ${NAME}: expected common, organizations, consumers, a tenant id or domain`,
    )
  ),
  OAUTH_GENERIC_ISSUER: optionalText().transform((issuer, ctx) => {
    if (issuer === undefined) return undefined;
    let url: URL | undefined;
    try {
      url = new URL(issuer);
    } catch { /* refused below */ }
    // https; plain http only to a loopback server (a local authorization server).
    return url && isAllowedEndpoint(url, true)
      ? issuer
      : fail(ctx, `Invalid ${NAME}: expected an https URL (http only to a loopback host)`);
  }),
  OAUTH_GENERIC_CLIENT_ID: optionalText(),
  OAUTH_GENERIC_CLIENT_SECRET: optionalText(),
  OAUTH_GENERIC_SCOPES: optionalText().transform((scopes, ctx) => {
    const list = (scopes ?? "openid email offline_access").split(/\s+/);
    return list.every((scope) => /^[\x21\x23-\x5b\x5d-\x7e]{1,200}$/.test(scope)) &&
        list.length <= 20
      ? list.join(" ")
      : fail(ctx, `Invalid ${NAME}: expected space-separated OAuth scopes`);
  }),
  OAUTH_GENERIC_IMAP: optionalText().transform((value, ctx) => {
    if (value === undefined) return undefined;
    const match = /^([A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):([1-9][0-9]{0,4})$/.exec(value);
    const port = Number(match?.[3]);
    return match && port <= 65535
      ? { host: match[1], port }
      : fail(ctx, `Invalid ${NAME}: expected host:port of the provider's IMAP server (TLS)`);
  }),
  OAUTH_RETURN_URLS: optionalText().transform((value, ctx) => {
    const urls = (value ?? "").split(",").map((url) => url.trim()).filter((url) => url);
    if (urls.length > 20) return fail(ctx, `Invalid ${NAME}: at most 20 URLs`);
    const normalised: string[] = [];
    for (const text of urls) {
      let url: URL | undefined;
      try {
        url = new URL(text);
      } catch { /* refused below */ }
      if (!url || !isAllowedEndpoint(url, true) || url.hash) {
        return fail(
          ctx,
          `Invalid ${NAME}: "${
            text.slice(0, 100)
          }" is not an https URL (http only to a loopback host) without a fragment`,
        );
      }
      normalised.push(url.href);
    }
    return normalised;
  }),
  // Set only by self-hosted Supabase's `main` router, which passes its whole environment
  // (VERIFY_JWT among it) to every function: how a function knows it runs there.
  VERIFY_JWT: optionalText(),
};

/**
 * The self-hosted `main` router's wall clock per worker, `workerTimeoutMs = 1 * 60 *
 * 1000` (supabase/supabase docker/volumes/functions/main/index.ts), with 150 MB.
 */
export const SELF_HOSTED_WALL_CLOCK_SECONDS = 60;

export type VariableName = keyof typeof VARIABLES;

/** The OAuth clients: the importer redeems refresh tokens with them. */
const OAUTH_VARIABLES = [
  "OAUTH_GOOGLE_CLIENT_ID",
  "OAUTH_GOOGLE_CLIENT_SECRET",
  "OAUTH_MICROSOFT_CLIENT_ID",
  "OAUTH_MICROSOFT_CLIENT_SECRET",
  "OAUTH_MICROSOFT_TENANT",
  "OAUTH_GENERIC_ISSUER",
  "OAUTH_GENERIC_CLIENT_ID",
  "OAUTH_GENERIC_CLIENT_SECRET",
  "OAUTH_GENERIC_SCOPES",
  "OAUTH_GENERIC_IMAP",
] as const satisfies VariableName[];

/** The importer's variables: both functions run it (cron-auto-sync hands off in-process). */
const IMPORTER_VARIABLES = [
  "IMAP_TLS_CA",
  "IMAP_ALLOW_PRIVATE_HOSTS",
  "IMAP_ALLOW_PLAINTEXT",
  "IMPORT_MAX_MESSAGES",
  "IMPORT_MAX_SECONDS",
  "FUNCTION_WALL_CLOCK_SECONDS",
  "IMPORT_MAX_CONCURRENT_RUNS",
  "IMPORT_MAX_MESSAGES_PER_INSTANCE",
  "VERIFY_JWT",
  ...OAUTH_VARIABLES,
] as const satisfies VariableName[];

/** The connect flow's variables: oauth-connect (start, finish) and oauth-callback, one module. */
const CONNECT_VARIABLES = [
  "SUPABASE_DB_URL",
  "SUPABASE_URL",
  "SUPABASE_JWKS",
  "SUPABASE_PUBLISHABLE_KEYS",
  "SUPABASE_ANON_KEY",
  ...OAUTH_VARIABLES,
  "OAUTH_RETURN_URLS",
] as const satisfies VariableName[];

export const READ_BY = {
  "cron-auto-sync": ["SUPABASE_DB_URL", "AUTO_SYNC_SIGNING_SECRETS", ...IMPORTER_VARIABLES],
  "import-emails": [
    "SUPABASE_DB_URL",
    "SUPABASE_URL",
    "SUPABASE_JWKS",
    "SUPABASE_PUBLISHABLE_KEYS",
    "SUPABASE_ANON_KEY",
    ...IMPORTER_VARIABLES,
  ],
  "oauth-connect": CONNECT_VARIABLES,
  "oauth-callback": CONNECT_VARIABLES,
} as const satisfies Record<string, VariableName[]>;

/** What the platform injects into every function; the rest are the operator's secrets. */
export const PLATFORM_INJECTED: VariableName[] = [
  "SUPABASE_DB_URL",
  "SUPABASE_URL",
  "SUPABASE_JWKS",
  "SUPABASE_PUBLISHABLE_KEYS",
  "SUPABASE_ANON_KEY",
  "VERIFY_JWT",
];

type Shape<K extends VariableName> = { [P in K]: (typeof VARIABLES)[P] };

function schemaOf<K extends VariableName>(names: readonly K[]) {
  return z.object(Object.fromEntries(names.map((name) => [name, VARIABLES[name]])) as Shape<K>);
}

type Environment = Record<string, string | undefined>;

function parse<T>(schema: z.ZodType<T>, env: Environment): T {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? "environment");
      // zod's own messages (a value that is not text) name no value either.
      return issue.code === "custom"
        ? issue.message.replaceAll(NAME, name)
        : `Invalid ${name}: ${issue.message}`;
    }).join("; "),
  );
}

type Parsed<K extends VariableName> = { [P in K]: z.output<(typeof VARIABLES)[P]> };

/**
 * The registered providers. A provider's variables come as a set (a client id without its
 * secret is a mistake worth refusing at start-up, not at the first import).
 */
function oauthConfig(env: Parsed<(typeof OAUTH_VARIABLES)[number]>): OAuthConfig {
  const problems: string[] = [];
  function set<K extends (typeof OAUTH_VARIABLES)[number]>(names: K[]): boolean {
    const given = names.filter((name) => env[name] !== undefined);
    if (given.length === 0) return false;
    const missing = names.filter((name) => env[name] === undefined);
    if (missing.length === 0) return true;
    problems.push(`Missing ${missing.join(", ")}: ${given.join(", ")} is set`);
    return false;
  }
  const config: OAuthConfig = {};
  if (set(["OAUTH_GOOGLE_CLIENT_ID", "OAUTH_GOOGLE_CLIENT_SECRET"])) {
    config.google = {
      clientId: env.OAUTH_GOOGLE_CLIENT_ID!,
      clientSecret: env.OAUTH_GOOGLE_CLIENT_SECRET!,
    };
  }
  if (set(["OAUTH_MICROSOFT_CLIENT_ID", "OAUTH_MICROSOFT_CLIENT_SECRET"])) {
    config.microsoft = {
      clientId: env.OAUTH_MICROSOFT_CLIENT_ID!,
      clientSecret: env.OAUTH_MICROSOFT_CLIENT_SECRET!,
      tenant: env.OAUTH_MICROSOFT_TENANT,
    };
  }
  if (
    set([
      "OAUTH_GENERIC_ISSUER",
      "OAUTH_GENERIC_CLIENT_ID",
      "OAUTH_GENERIC_CLIENT_SECRET",
      "OAUTH_GENERIC_IMAP",
    ])
  ) {
    config.generic = {
      issuer: env.OAUTH_GENERIC_ISSUER!,
      clientId: env.OAUTH_GENERIC_CLIENT_ID!,
      clientSecret: env.OAUTH_GENERIC_CLIENT_SECRET!,
      scopes: env.OAUTH_GENERIC_SCOPES.split(" "),
      imap: env.OAUTH_GENERIC_IMAP!,
    };
  }
  if (problems.length > 0) throw new ConfigError(problems.join("; "));
  return config;
}

function importerConfig(
  env: Parsed<(typeof IMPORTER_VARIABLES)[number]>,
  raw: Environment,
): ImporterConfig {
  const selfHosted = env.VERIFY_JWT !== undefined && !raw.FUNCTION_WALL_CLOCK_SECONDS;
  return {
    imap: {
      caPem: env.IMAP_TLS_CA,
      allowPrivateHosts: env.IMAP_ALLOW_PRIVATE_HOSTS,
      // Cleartext IMAP is allowed where private hosts are (local servers), or on its own opt-in.
      allowPlaintext: env.IMAP_ALLOW_PRIVATE_HOSTS || env.IMAP_ALLOW_PLAINTEXT,
    },
    oauth: oauthConfig(env),
    limits: { maxMessages: env.IMPORT_MAX_MESSAGES, maxSeconds: env.IMPORT_MAX_SECONDS },
    isolate: {
      wallClockSeconds: selfHosted
        ? SELF_HOSTED_WALL_CLOCK_SECONDS
        : env.FUNCTION_WALL_CLOCK_SECONDS,
      maxConcurrentRuns: env.IMPORT_MAX_CONCURRENT_RUNS,
      maxMessages: env.IMPORT_MAX_MESSAGES_PER_INSTANCE,
    },
  };
}

/** The importer's settings as the functions get them when nothing is set. */
export const DEFAULT_IMPORTER_CONFIG: ImporterConfig = importerConfig(
  parse(schemaOf(IMPORTER_VARIABLES), {}),
  {},
);

export function cronAutoSyncConfig(env: Environment): CronAutoSyncConfig {
  const raw = parse(schemaOf(READ_BY["cron-auto-sync"]), env);
  return {
    databaseUrl: raw.SUPABASE_DB_URL,
    keyring: raw.AUTO_SYNC_SIGNING_SECRETS,
    importer: importerConfig(raw, env),
  };
}

/** The key Auth expects in `apikey`: the one rule for every function that verifies users. */
function authApiKey(raw: { SUPABASE_PUBLISHABLE_KEYS?: string; SUPABASE_ANON_KEY?: string }) {
  const apiKey = raw.SUPABASE_PUBLISHABLE_KEYS ?? raw.SUPABASE_ANON_KEY;
  if (!apiKey) {
    throw new ConfigError(
      "Missing SUPABASE_PUBLISHABLE_KEYS or SUPABASE_ANON_KEY: cannot reach Supabase Auth",
    );
  }
  return apiKey;
}

export function oauthConnectConfig(env: Environment): OAuthConnectConfig {
  const raw = parse(schemaOf(READ_BY["oauth-connect"]), env);
  const supabaseUrl = raw.SUPABASE_URL.replace(/\/+$/, "");
  return {
    databaseUrl: raw.SUPABASE_DB_URL,
    auth: { supabaseUrl, apiKey: authApiKey(raw), jwks: raw.SUPABASE_JWKS },
    oauth: oauthConfig(raw),
    redirectUri: `${supabaseUrl}/functions/v1/oauth-callback`,
    returnUrls: raw.OAUTH_RETURN_URLS,
  };
}

export function importEmailsConfig(env: Environment): ImportEmailsConfig {
  const raw = parse(schemaOf(READ_BY["import-emails"]), env);
  const apiKey = authApiKey(raw);
  return {
    databaseUrl: raw.SUPABASE_DB_URL,
    auth: { supabaseUrl: raw.SUPABASE_URL, apiKey, jwks: raw.SUPABASE_JWKS },
    importer: importerConfig(raw, env),
  };
}
