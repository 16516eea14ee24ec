import assert from "node:assert/strict";
import defaults from "./ports.json" with { type: "json" };

const here = new URL(".", import.meta.url).pathname;

const stackVariables = [
  ...Object.keys(defaults),
  "STACK_DB_URL",
  "STACK_FUNCTIONS_URL",
  "STACK_STATE_DIR",
];

/** What scripts/ see after sourcing stack_env.sh with the given environment. */
async function bashView(env: Record<string, string>): Promise<Record<string, string>> {
  const script = `. "${here}stack_env.sh"; for n in ${
    stackVariables.join(" ")
  }; do echo "$n=\${!n}"; done`;
  const output = await new Deno.Command("bash", {
    args: ["-c", script],
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
    clearEnv: true,
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return Object.fromEntries(
    new TextDecoder().decode(output.stdout).trim().split("\n").map((line) => {
      const at = line.indexOf("=");
      return [line.slice(0, at), line.slice(at + 1)];
    }),
  );
}

/** What the TypeScript side sees with only the given STACK_* variables (a fresh module instance). */
async function typescriptView(given: Record<string, string>): Promise<Record<string, unknown>> {
  const env = { ...Object.fromEntries(stackVariables.map((name) => [name, ""])), ...given };
  const saved = Object.fromEntries(Object.keys(env).map((name) => [name, Deno.env.get(name)]));
  for (const [name, value] of Object.entries(env)) Deno.env.set(name, value);
  try {
    return await import(`./urls.ts?view=${crypto.randomUUID()}`);
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
}

Deno.test("scripts and TypeScript agree on every default port and URL of the stack", async () => {
  const bash = await bashView({});
  const ts = await typescriptView({});
  assert.equal(bash.STACK_DB_PORT, String(ts.dbPort));
  assert.equal(bash.STACK_GATEWAY_PORT, String(ts.gatewayPort));
  assert.equal(bash.STACK_IMAP_PORT, String(ts.imapPort));
  assert.equal(bash.STACK_IMAPS_PORT, String(ts.imapsPort));
  assert.equal(bash.STACK_OAUTH_PORT, String(ts.oauthPort));
  assert.equal(bash.STACK_DB_URL, ts.dbUrl);
  assert.equal(bash.STACK_FUNCTIONS_URL, ts.functionsUrl);
  assert.equal(bash.STACK_STATE_DIR, ts.stateDir);
  assert.equal(ts.dbUrl, "postgresql://postgres:postgres@127.0.0.1:54322/postgres");
  assert.equal(ts.functionsUrl, "http://127.0.0.1:54321/functions/v1");
});

Deno.test("a second stack: every port moves with the environment, on both sides", async () => {
  const env = {
    STACK_GATEWAY_PORT: "55321",
    STACK_DB_PORT: "55322",
    STACK_IMAP_PORT: "55143",
    STACK_IMAPS_PORT: "55993",
    STACK_TEST_PORT_BASE: "55480",
    STACK_OAUTH_PORT: "55360",
    STACK_STATE_DIR: "/var/tmp/second-stack",
  };
  const bash = await bashView(env);
  const ts = await typescriptView(env) as typeof import("./urls.ts");
  assert.equal(bash.STACK_DB_URL, "postgresql://postgres:postgres@127.0.0.1:55322/postgres");
  assert.equal(ts.dbUrl, bash.STACK_DB_URL);
  assert.equal(bash.STACK_FUNCTIONS_URL, "http://127.0.0.1:55321/functions/v1");
  assert.equal(ts.functionsUrl, bash.STACK_FUNCTIONS_URL);
  assert.equal(bash.STACK_IMAPS_PORT, "55993");
  assert.equal(ts.imapsPort, 55993);
  assert.equal(bash.STACK_OAUTH_PORT, "55360");
  assert.equal(ts.oauthIssuer, "http://127.0.0.1:55360");
  assert.equal(ts.stateDir, "/var/tmp/second-stack");
  const opened = [
    ...ts.testPorts.rotationFunctions,
    ts.testPorts.rotationProxy,
    ts.testPorts.slowEndpoint,
    ts.testPorts.closedPort,
    ...ts.testPorts.scaleBenchFunctions,
    ts.testPorts.failClosedFunction,
  ];
  assert.ok(opened.every((port) => port >= 55480 && port < 55500), String(opened));
  assert.equal(new Set(opened).size, opened.length, "no port handed out twice");
});

Deno.test("a port that is not a number is refused by name", async () => {
  await assert.rejects(
    () => typescriptView({ STACK_DB_PORT: "54322; drop" }),
    /Invalid STACK_DB_PORT "54322; drop"/,
  );
});
