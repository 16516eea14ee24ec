/**
 * Every URL and port of the local stack, in one place, for ops/, tests/ and bench/.
 * The default ports live in ports.json (scripts/ read the same file through
 * local-stack/stack_env.sh); each one can be overridden by an environment variable
 * of the same name, so two stacks can run side by side on one machine:
 *
 *   STACK_GATEWAY_PORT    functions gateway, http://127.0.0.1:<port>/functions/v1
 *   STACK_DB_PORT         PostgreSQL
 *   STACK_IMAP_PORT       Dovecot, plaintext + STARTTLS
 *   STACK_IMAPS_PORT      Dovecot, implicit TLS
 *   STACK_TEST_PORT_BASE  first of the 20 ports tests and benchmarks open for their own servers
 *   STACK_OAUTH_PORT      the local authorization server (oidc-provider), http://127.0.0.1:<port>
 *   STACK_DB_URL, STACK_FUNCTIONS_URL, STACK_STATE_DIR  whole URLs / the state folder
 */
import defaults from "./ports.json" with { type: "json" };

type PortName = keyof typeof defaults;

/** An environment variable, or undefined (also when the program may not read the environment). */
function fromEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

function port(name: PortName): number {
  const text = fromEnv(name);
  if (text === undefined) return defaults[name];
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new Error(`Invalid ${name} "${text}": expected a port number`);
  }
  return value;
}

const repo = new URL("../", import.meta.url).pathname;

export const gatewayPort = port("STACK_GATEWAY_PORT");
export const dbPort = port("STACK_DB_PORT");
export const imapPort = port("STACK_IMAP_PORT");
export const imapsPort = port("STACK_IMAPS_PORT");
export const oauthPort = port("STACK_OAUTH_PORT");

export const dbUrl = fromEnv("STACK_DB_URL") ??
  `postgresql://postgres:postgres@127.0.0.1:${dbPort}/postgres`;
export const functionsUrl = fromEnv("STACK_FUNCTIONS_URL") ??
  `http://127.0.0.1:${gatewayPort}/functions/v1`;

/** The local authorization server's issuer (local-stack/oauth/). */
export const oauthIssuer = `http://127.0.0.1:${oauthPort}`;
/** The redirect URI its mail clients are registered with (the connect flow's callback, planned). */
export const oauthRedirectUri = `${functionsUrl}/oauth-callback`;

/** The stack's state (keys, logs, Dovecot); `.stack` in the clone may link elsewhere (scripts/stack). */
export const stateDir = fromEnv("STACK_STATE_DIR") ?? `${repo}.stack`;

/** The gateway serves function `index` (sorted folder names) on its own port too. */
export function functionPort(gateway: number, index: number): number {
  return gateway + 100 + index;
}

const testPortBase = port("STACK_TEST_PORT_BASE");

/** Ports the tests and benchmarks open for servers of their own (all within base … base + 19). */
export const testPorts = {
  rotationFunctions: [testPortBase, testPortBase + 1, testPortBase + 2],
  rotationProxy: testPortBase + 3,
  slowEndpoint: testPortBase + 4,
  closedPort: testPortBase + 5, // nothing ever listens here: "connection refused"
  // Gateways tests start one at a time (project modes, deploy layout); their functions
  // listen on functionPort(platformGateway, i).
  platformGateway: testPortBase + 6,
  transactionPooler: testPortBase + 7, // tests/support/transaction_pooler.ts
  scaleBenchFunctions: [0, 1, 2, 3, 4].map((offset) => testPortBase + 10 + offset),
  failClosedFunction: testPortBase + 19,
};
