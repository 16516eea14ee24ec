import assert from "node:assert/strict";
import { createIsolateBudget } from "../import_emails/isolate_budget.ts";
import { generateSecret } from "../wire/standard_webhooks.ts";
import {
  ConfigError,
  cronAutoSyncConfig,
  DEFAULT_IMPORTER_CONFIG,
  importEmailsConfig,
  oauthConnectConfig,
  PLATFORM_INJECTED,
  READ_BY,
  type VariableName,
  VARIABLES,
} from "./config.ts";

const DB_URL = "postgresql://postgres:db-password-x@db.example:5432/postgres";
const cronEnv = (changes: Record<string, string | undefined> = {}) => ({
  SUPABASE_DB_URL: DB_URL,
  AUTO_SYNC_SIGNING_SECRETS: `v1,${generateSecret()}`,
  ...changes,
});
const hostedEnv = (changes: Record<string, string | undefined> = {}) => ({
  SUPABASE_DB_URL: DB_URL,
  SUPABASE_URL: "https://abcdefghijklmnopqrst.supabase.co",
  SUPABASE_ANON_KEY: "anon-key-of-the-project",
  SUPABASE_JWKS: "[]",
  ...changes,
});

// --- README's table ---

/** The rows of README's "Function environment" table: variable, set by, read by, default. */
function readmeRows(): string[][] {
  const readme = Deno.readTextFileSync(new URL("../../README.md", import.meta.url));
  const lines = readme.split("\n");
  const header = lines.findIndex((line) =>
    /^\| variable +\| set by +\| read by +\| default /.test(line)
  );
  assert.ok(header >= 0, "README has the environment table");
  const rows: string[][] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line.split(/(?<!\\)\|/).slice(1, 5).map((cell) => cell.trim()));
  }
  return rows;
}

/** What the schema says a variable defaults to when unset, as README writes it. */
function defaultOf(name: VariableName): string {
  const parsed = VARIABLES[name].safeParse(undefined);
  if (!parsed.success) return "required";
  const value = parsed.data;
  if (value === undefined || (Array.isArray(value) && value.length === 0)) return "none";
  return String(value);
}

Deno.test("README's environment table lists every variable, who sets and reads it, and its default", () => {
  const names = Object.keys(VARIABLES) as VariableName[];
  const expected = names.map((name) => [
    `\`${name}\``,
    PLATFORM_INJECTED.includes(name) ? "platform" : "you",
    Object.entries(READ_BY)
      .filter(([, read]) => (read as readonly string[]).includes(name))
      .map(([fn]) => fn)
      .join(", "),
    defaultOf(name),
  ]);
  assert.deepEqual(readmeRows(), expected);
});

Deno.test("every variable is read by a function", () => {
  const read = new Set(Object.values(READ_BY).flat());
  assert.deepEqual(Object.keys(VARIABLES).filter((name) => !read.has(name as VariableName)), []);
});

// --- the importer's settings (both functions) ---

Deno.test("the importer's defaults are the platform's (free plan wall clock) and the run budget", () => {
  assert.deepEqual(DEFAULT_IMPORTER_CONFIG, {
    imap: { caPem: undefined, allowPrivateHosts: false, allowPlaintext: false },
    limits: { maxMessages: 5000, maxSeconds: 100 },
    isolate: { wallClockSeconds: 150, maxConcurrentRuns: 4, maxMessages: 9000 },
    oauth: {},
  });
  assert.deepEqual(cronAutoSyncConfig(cronEnv()).importer, DEFAULT_IMPORTER_CONFIG);
  assert.deepEqual(importEmailsConfig(hostedEnv()).importer, DEFAULT_IMPORTER_CONFIG);
});

// --- OAuth providers (the importer redeems refresh tokens with them) ---

Deno.test("an OAuth provider is registered by its whole set of variables, in both functions", () => {
  const env = {
    OAUTH_GOOGLE_CLIENT_ID: "g-id",
    OAUTH_GOOGLE_CLIENT_SECRET: "g-secret",
    OAUTH_MICROSOFT_CLIENT_ID: "m-id",
    OAUTH_MICROSOFT_CLIENT_SECRET: "m-secret",
    OAUTH_GENERIC_ISSUER: "https://login.example.test/realm",
    OAUTH_GENERIC_CLIENT_ID: "x-id",
    OAUTH_GENERIC_CLIENT_SECRET: "x-secret",
    OAUTH_GENERIC_IMAP: "imap.example.test:993",
  };
  const expected = {
    google: { clientId: "g-id", clientSecret: "g-secret" },
    microsoft: { clientId: "m-id", clientSecret: "m-secret", tenant: "common" },
    generic: {
      issuer: "https://login.example.test/realm",
      clientId: "x-id",
      clientSecret: "x-secret",
      scopes: ["openid", "email", "offline_access"],
      imap: { host: "imap.example.test", port: 993 },
    },
  };
  assert.deepEqual(cronAutoSyncConfig(cronEnv(env)).importer.oauth, expected);
  assert.deepEqual(importEmailsConfig(hostedEnv(env)).importer.oauth, expected);
  assert.equal(
    cronAutoSyncConfig(cronEnv({ ...env, OAUTH_MICROSOFT_TENANT: "contoso.onmicrosoft.com" }))
      .importer.oauth.microsoft?.tenant,
    "contoso.onmicrosoft.com",
  );
});

Deno.test("half a provider, a bad tenant, issuer or IMAP server throw at start-up, naming no secret", () => {
  const refused: Array<[Record<string, string>, RegExp]> = [
    [
      { OAUTH_GOOGLE_CLIENT_SECRET: "s3cret-value" },
      /Missing OAUTH_GOOGLE_CLIENT_ID: OAUTH_GOOGLE_CLIENT_SECRET is set/,
    ],
    [
      {
        OAUTH_MICROSOFT_CLIENT_ID: "m",
        OAUTH_MICROSOFT_CLIENT_SECRET: "s",
        OAUTH_MICROSOFT_TENANT: "a/b",
      },
      /Invalid OAUTH_MICROSOFT_TENANT/,
    ],
    [{ OAUTH_GENERIC_ISSUER: "http://login.example.test" }, /Invalid OAUTH_GENERIC_ISSUER/],
    [{ OAUTH_GENERIC_IMAP: "imap.example.test" }, /Invalid OAUTH_GENERIC_IMAP/],
    [
      { OAUTH_GENERIC_ISSUER: "https://login.example.test", OAUTH_GENERIC_CLIENT_ID: "x" },
      /Missing OAUTH_GENERIC_CLIENT_SECRET, OAUTH_GENERIC_IMAP/,
    ],
  ];
  for (const [env, message] of refused) {
    assert.throws(() => cronAutoSyncConfig(cronEnv(env)), (error: Error) => {
      assert.match(error.message, message);
      assert.ok(!error.message.includes("s3cret-value"));
      return true;
    });
  }
  // A local authorization server: plain http to loopback only.
  assert.equal(
    cronAutoSyncConfig(cronEnv({
      OAUTH_GENERIC_ISSUER: "http://127.0.0.1:54360",
      OAUTH_GENERIC_CLIENT_ID: "x",
      OAUTH_GENERIC_CLIENT_SECRET: "s",
      OAUTH_GENERIC_IMAP: "localhost:54993",
    })).importer.oauth.generic?.issuer,
    "http://127.0.0.1:54360",
  );
});

Deno.test("the connect flow: the exact redirect URI from SUPABASE_URL, return URLs exact and safe", () => {
  const config = oauthConnectConfig(hostedEnv({
    OAUTH_RETURN_URLS: "https://app.example/mailboxes, http://localhost:3000/connected",
  }));
  assert.equal(
    config.redirectUri,
    "https://abcdefghijklmnopqrst.supabase.co/functions/v1/oauth-callback",
  );
  assert.deepEqual(config.returnUrls, [
    "https://app.example/mailboxes",
    "http://localhost:3000/connected",
  ]);
  assert.deepEqual(oauthConnectConfig(hostedEnv()).returnUrls, [], "none: every connect refused");
  for (
    const bad of [
      "http://app.example/mailboxes", // cleartext to a public host
      "https://app.example/mailboxes#x",
      "javascript:alert(1)",
      "not a url",
    ]
  ) {
    assert.throws(
      () => oauthConnectConfig(hostedEnv({ OAUTH_RETURN_URLS: bad })),
      /Invalid OAUTH_RETURN_URLS/,
      bad,
    );
  }
});

Deno.test("the budget's settings come from the environment; nonsense throws at start-up", () => {
  const budget = createIsolateBudget(
    cronAutoSyncConfig(cronEnv({ FUNCTION_WALL_CLOCK_SECONDS: "400" })).importer.isolate,
  );
  assert.equal(budget.wallClockMs, 400_000);
  assert.equal(budget.messagesLeft(), 9000);
  assert.equal(
    createIsolateBudget(cronAutoSyncConfig(cronEnv()).importer.isolate).wallClockMs,
    150_000,
  );
  assert.throws(
    () => cronAutoSyncConfig(cronEnv({ IMPORT_MAX_CONCURRENT_RUNS: "0" })),
    /Invalid IMPORT_MAX_CONCURRENT_RUNS: "0"/,
  );
});

Deno.test("under self-hosted Supabase's main router (VERIFY_JWT set) the wall clock defaults to its 60 s", () => {
  for (const value of ["false", "true"]) {
    assert.equal(
      cronAutoSyncConfig(cronEnv({ VERIFY_JWT: value })).importer.isolate.wallClockSeconds,
      60,
    );
    assert.equal(
      importEmailsConfig(hostedEnv({ VERIFY_JWT: value })).importer.isolate.wallClockSeconds,
      60,
    );
  }
  // Set by the operator, it wins; hosted (no VERIFY_JWT) keeps the free plan's 150 s.
  assert.equal(
    cronAutoSyncConfig(cronEnv({ VERIFY_JWT: "false", FUNCTION_WALL_CLOCK_SECONDS: "90" }))
      .importer.isolate.wallClockSeconds,
    90,
  );
  assert.equal(cronAutoSyncConfig(cronEnv()).importer.isolate.wallClockSeconds, 150);
});

Deno.test("numbers are whole, from 1 to 9,999,999; empty is the default", () => {
  for (const value of ["0", "-1", "1.5", "10000000", "1e3", " 5", "five", "0x10"]) {
    assert.throws(
      () => importEmailsConfig(hostedEnv({ IMPORT_MAX_MESSAGES: value })),
      (error: Error) =>
        error instanceof ConfigError &&
        error.message.startsWith("Invalid IMPORT_MAX_MESSAGES:") &&
        error.message.endsWith("is not a positive integer"),
      value,
    );
  }
  const limits = (changes: Record<string, string>) =>
    importEmailsConfig(hostedEnv(changes)).importer.limits;
  assert.deepEqual(limits({ IMPORT_MAX_MESSAGES: "9999999", IMPORT_MAX_SECONDS: "1" }), {
    maxMessages: 9_999_999,
    maxSeconds: 1,
  });
  assert.deepEqual(limits({ IMPORT_MAX_MESSAGES: "" }).maxMessages, 5000);
});

Deno.test('private hosts imply cleartext IMAP; either opt-in is exactly "true"', () => {
  const imap = (changes: Record<string, string>) =>
    cronAutoSyncConfig(cronEnv(changes)).importer.imap;
  assert.deepEqual(imap({ IMAP_ALLOW_PRIVATE_HOSTS: "true" }), {
    caPem: undefined,
    allowPrivateHosts: true,
    allowPlaintext: true,
  });
  assert.equal(imap({ IMAP_ALLOW_PLAINTEXT: "true" }).allowPlaintext, true);
  assert.equal(imap({ IMAP_ALLOW_PLAINTEXT: "true" }).allowPrivateHosts, false);
  for (const value of ["TRUE", "1", "yes", " true"]) {
    assert.deepEqual(
      imap({ IMAP_ALLOW_PRIVATE_HOSTS: value, IMAP_ALLOW_PLAINTEXT: value }),
      { caPem: undefined, allowPrivateHosts: false, allowPlaintext: false },
      value,
    );
  }
});

Deno.test("IMAP_TLS_CA must be a PEM certificate; blank is none", () => {
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
  assert.equal(cronAutoSyncConfig(cronEnv({ IMAP_TLS_CA: `\n${pem}\n` })).importer.imap.caPem, pem);
  assert.equal(cronAutoSyncConfig(cronEnv({ IMAP_TLS_CA: "  " })).importer.imap.caPem, undefined);
  assert.throws(
    () => cronAutoSyncConfig(cronEnv({ IMAP_TLS_CA: "not a certificate" })),
    /^ConfigError: Invalid IMAP_TLS_CA: expected a PEM certificate$/,
  );
});

// --- cron-auto-sync ---

Deno.test("cron-auto-sync needs its keyring and the database URL, and reads nothing of Auth", () => {
  const secret = generateSecret();
  const config = cronAutoSyncConfig({
    SUPABASE_DB_URL: DB_URL,
    AUTO_SYNC_SIGNING_SECRETS: `v1,${secret}`,
  });
  assert.equal(config.databaseUrl, DB_URL);
  assert.equal(config.keyring.length, 1);
  assert.throws(
    () => cronAutoSyncConfig({}),
    (error: Error) =>
      error instanceof ConfigError &&
      /Missing SUPABASE_DB_URL: the functions need a database URL/.test(error.message) &&
      /Missing AUTO_SYNC_SIGNING_SECRETS: set it to "v1,whsec_<base64>/.test(error.message),
  );
});

Deno.test("config errors name the variable and every problem at once, never a secret's value", () => {
  const secret = generateSecret();
  const badKeyring = `v2,${secret}`; // a real secret in a wrong entry
  const badPublishable = '["sb_publishable_should-not-leak"]';
  for (
    const [parse, env, problems] of [
      [
        cronAutoSyncConfig,
        cronEnv({ AUTO_SYNC_SIGNING_SECRETS: badKeyring, IMPORT_MAX_SECONDS: "0" }),
        [
          /Invalid AUTO_SYNC_SIGNING_SECRETS: entry 1 does not start with "v1,"/,
          /Invalid IMPORT_MAX_SECONDS: "0"/,
        ],
      ],
      [
        importEmailsConfig,
        hostedEnv({ SUPABASE_PUBLISHABLE_KEYS: badPublishable, SUPABASE_URL: "" }),
        [
          /Invalid SUPABASE_PUBLISHABLE_KEYS/,
          /Missing SUPABASE_URL: cannot verify user tokens/,
        ],
      ],
    ] as const
  ) {
    let message = "";
    try {
      parse(env);
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      message = error.message;
    }
    for (const problem of problems) assert.match(message, problem);
    assert.ok(!message.includes(secret.slice(6, 20)), message);
    assert.ok(!message.includes("should-not-leak"), message);
    assert.ok(!message.includes("db-password"), message);
  }
});

// --- import-emails (moved from user_auth_test.ts: the checks now live here) ---

Deno.test("no SUPABASE_URL or no API key throws at construction", () => {
  assert.throws(() => importEmailsConfig({ SUPABASE_DB_URL: DB_URL }), /Missing SUPABASE_URL/);
  assert.throws(
    () => importEmailsConfig(hostedEnv({ SUPABASE_URL: "" })),
    /Missing SUPABASE_URL/,
  );
  assert.throws(
    () => importEmailsConfig(hostedEnv({ SUPABASE_ANON_KEY: undefined })),
    /Missing SUPABASE_PUBLISHABLE_KEYS or SUPABASE_ANON_KEY/,
  );
  for (const value of ["nope", "[]", '"sb_publishable_x"', '{"default": 1}', "null"]) {
    assert.throws(
      () => importEmailsConfig(hostedEnv({ SUPABASE_PUBLISHABLE_KEYS: value })),
      /Invalid SUPABASE_PUBLISHABLE_KEYS/,
      value,
    );
  }
});

Deno.test("an invalid SUPABASE_JWKS throws at construction", () => {
  for (const value of ["not json", "{", '{"keys": "nope"}', '{"foo": 1}', "1", "null"]) {
    assert.throws(
      () => importEmailsConfig(hostedEnv({ SUPABASE_JWKS: value })),
      /Invalid SUPABASE_JWKS/,
      value,
    );
  }
  for (const value of ["{}", '{"keys": {}}', "[1]", '["key"]']) {
    assert.throws(
      () => importEmailsConfig(hostedEnv({ SUPABASE_JWKS: value })),
      /Invalid SUPABASE_JWKS/,
      value,
    );
  }
});

Deno.test("the API key sent to Auth: the default publishable key, another one, else anon", () => {
  const apiKey = (changes: Record<string, string | undefined>) =>
    importEmailsConfig(hostedEnv(changes)).auth.apiKey;
  assert.equal(apiKey({ SUPABASE_PUBLISHABLE_KEYS: '{"web": "w", "default": "d"}' }), "d");
  assert.equal(apiKey({ SUPABASE_PUBLISHABLE_KEYS: '{"web": "w"}' }), "w");
  assert.equal(apiKey({ SUPABASE_PUBLISHABLE_KEYS: "{}" }), "anon-key-of-the-project");
  assert.equal(apiKey({ SUPABASE_PUBLISHABLE_KEYS: '{"default": "", "web": "w"}' }), "w");
  assert.deepEqual(
    importEmailsConfig(hostedEnv({ SUPABASE_JWKS: '{"keys": [{"kty": "oct"}]}' })).auth.jwks,
    [
      { kty: "oct" },
    ],
  );
  assert.deepEqual(importEmailsConfig(hostedEnv({ SUPABASE_JWKS: undefined })).auth.jwks, []);
});
