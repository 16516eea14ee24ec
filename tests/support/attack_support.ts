/**
 * Shared tooling for the attack suite (the attack_*_test.ts files under tests/): fresh dispatched
 * runs with clean-up, signing over arbitrary byte strings with the stack's own key,
 * a raw HTTP/1.1 client for requests fetch() refuses to send, a collector of every
 * response body (scanned for the signing secret at the end of each file), and the
 * checks that a refused request left its run untouched.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type postgres from "postgres";
import { signRequest, webhookHeaders } from "../../functions-shared/wire/client/signed_request.ts";
import { SigningKey } from "../../functions-shared/wire/standard_webhooks.ts";
import { createUser, functionsUrl, stackSecrets } from "./local_stack.ts";
import { functionPort } from "../../local-stack/urls.ts";
import {
  type Claims,
  claimsFor,
  createDispatchedRun,
  send,
  type SignedRequest,
} from "./signed_requests.ts";

export { mapLimit } from "./map_limit.ts";

const repo = new URL("../../", import.meta.url).pathname;

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

/** Where cron-auto-sync can be reached: through the gateway, and its own `deno serve`. */
export interface Target {
  name: string;
  port: number;
  path: string;
}

const gatewayPort = Number(new URL(functionsUrl).port || 80);

/** The gateway starts function i (sorted folder names) on gateway port + 100 + i. */
function directPort(name: string): number {
  const names = [...Deno.readDirSync(`${repo}supabase/functions`)]
    .filter((entry) =>
      entry.isDirectory && !entry.name.startsWith("_") && !entry.name.startsWith(".")
    )
    .map((entry) => entry.name)
    .sort();
  const index = names.indexOf(name);
  if (index < 0) throw new Error(`No function "${name}" in supabase/functions`);
  return functionPort(gatewayPort, index);
}

export const GATEWAY: Target = {
  name: "gateway",
  port: gatewayPort,
  path: "/functions/v1/cron-auto-sync",
};
export const DIRECT: Target = {
  name: "function",
  port: directPort("cron-auto-sync"),
  path: "/cron-auto-sync",
};
export const TARGETS = [GATEWAY, DIRECT];

// ---------------------------------------------------------------------------
// Keys and signatures
// ---------------------------------------------------------------------------

/** The raw HMAC key bytes of each secret of the stack's keyring. */
export function stackKeyBytes(): Uint8Array[] {
  return stackSecrets().map((secret) =>
    new Uint8Array(Buffer.from(secret.slice("whsec_".length), "base64"))
  );
}

/** `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>` over the exact strings given. */
export function v1Signature(
  key: Uint8Array,
  id: string,
  timestamp: string,
  body: Uint8Array,
): string {
  return signRequest([new SigningKey(key)], body, { id, timestamp }).signature;
}

/** Signs with the stack's first key only: one `v1,` entry, so one changed byte always breaks it. */
export function signRaw(
  id: string,
  timestamp: string,
  body: Uint8Array | string,
  key: Uint8Array = stackKeyBytes()[0],
): SignedRequest {
  return signRequest([new SigningKey(key)], body, { id, timestamp });
}

/** Signs claims (JSON.stringify, or the body text given) with id = run_id and timestamp = iat. */
export function signClaims(
  claims: Record<string, unknown>,
  options: { body?: string; id?: string; timestamp?: string } = {},
) {
  return signRaw(
    options.id ?? String(claims.run_id),
    options.timestamp ?? String(claims.iat),
    options.body ?? JSON.stringify(claims),
  );
}

/**
 * Runs `fn` as the signed-in user, as PostgREST would: role authenticated with the
 * user's claims in request.jwt.claims, in one transaction.
 */
export async function asUser<T>(
  sql: postgres.Sql,
  userId: string,
  fn: (tx: postgres.TransactionSql) => Promise<T>,
): Promise<T> {
  return await sql.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${
      JSON.stringify({ sub: userId, role: "authenticated" })
    }, true)`;
    await tx`set local role authenticated`;
    return await fn(tx);
  }) as T;
}

// ---------------------------------------------------------------------------
// Users and runs, cleaned up at the end of each file
// ---------------------------------------------------------------------------

export class Fixtures {
  readonly users: string[] = [];
  constructor(readonly sql: postgres.Sql) {}

  async user(label = "attack"): Promise<string> {
    const id = await createUser(this.sql, label);
    this.users.push(id);
    return id;
  }

  /** A fresh user with one dispatched run, as dispatch() leaves it, and its claims. */
  async run(
    options: { userId?: string; iat?: number } = {},
  ): Promise<{ userId: string; runId: string; claims: Claims }> {
    const userId = options.userId ?? await this.user();
    const runId = await createDispatchedRun(this.sql, userId);
    return { userId, runId, claims: claimsFor(userId, runId, options.iat) };
  }

  /**
   * Removes every user this file created (their schedules, runs and mailboxes go with
   * them by cascade, mailbox secrets with the Vault trigger), once their accepted runs
   * have finished in the background.
   */
  async cleanup(): Promise<void> {
    if (this.users.length === 0) return;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const [row] = await this.sql`
        select count(*)::int as n from auto_sync.runs
         where user_id = any(${this.users}::uuid[]) and status in ('accepted', 'running')`;
      if (row.n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await this.sql`delete from auth.users where id = any(${this.users}::uuid[])`;
    this.users.length = 0;
  }

  /** Registers the file's last test: clean up, then close the connection. */
  cleanUpLast(): void {
    Deno.test({
      name: "clean up: remove this file's users and close the database connection",
      fn: async () => {
        try {
          await this.cleanup();
        } finally {
          await this.sql.end();
        }
      },
    });
  }
}

export async function runStatus(sql: postgres.Sql, runId: string): Promise<string | undefined> {
  const [run] = await sql`select status from auto_sync.runs where id = ${runId}`;
  return run?.status;
}

/** A refusal before the database: the run is still dispatched and none of the ids was burned. */
export async function assertUntouched(
  sql: postgres.Sql,
  runId: string,
  requestIds: string[] = [runId],
) {
  assert.equal(
    await runStatus(sql, runId),
    "dispatched",
    `run ${runId} should still be dispatched`,
  );
  const used =
    await sql`select request_id from auto_sync.used_request_ids where request_id = any(${requestIds})`;
  assert.deepEqual(
    used.map((row) => row.request_id),
    [],
    "no request id may be burned by a refusal",
  );
}

/** Waits until the background import of an accepted run has finished (it ends `skipped`: no mailbox). */
export async function waitFinished(
  sql: postgres.Sql,
  runId: string,
  timeoutMs = 10_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [row] = await sql`select status, finished_at from auto_sync.runs where id = ${runId}`;
    if (row?.finished_at) return row.status;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Run ${runId} did not finish within ${timeoutMs} ms`);
}

// ---------------------------------------------------------------------------
// HTTP: fetch for well-formed requests, a raw socket for everything else
// ---------------------------------------------------------------------------

/** Every response body this file received, scanned for secrets at its end. */
export const collectedBodies: string[] = [];

export interface Answer {
  status: number;
  text: string;
}

/** Sends a signed request to `target` (send(), fetch) and keeps the answer's body for the scan. */
export async function post(
  request: SignedRequest,
  options: { target?: Target; headers?: Record<string, string | null>; body?: Uint8Array } = {},
): Promise<Answer> {
  const target = options.target ?? GATEWAY;
  const response = await send(request, {
    url: `http://127.0.0.1:${target.port}${target.path}`,
    headers: options.headers,
    body: options.body as BodyInit | undefined,
  });
  const text = await response.text();
  collectedBodies.push(text);
  return { status: response.status, text };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RawExchange {
  /** Every response parsed off the connection, in order. */
  responses: RawResponse[];
  /** The server closed the connection (rather than our time running out). */
  closed: boolean;
  raw: string;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** Parses as many complete HTTP/1.1 responses as the bytes hold. */
export function parseResponses(bytes: Uint8Array): RawResponse[] {
  const text = Buffer.from(bytes).toString("latin1");
  const responses: RawResponse[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf("\r\n\r\n", at);
    if (end < 0) break;
    const [statusLine, ...lines] = text.slice(at, end).split("\r\n");
    const match = statusLine.match(/^HTTP\/1\.[01] (\d{3})/);
    if (!match) break;
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let bodyStart = end + 4;
    let body = "";
    if (headers["transfer-encoding"]?.toLowerCase().includes("chunked")) {
      while (true) {
        const lineEnd = text.indexOf("\r\n", bodyStart);
        if (lineEnd < 0) return responses;
        const size = parseInt(text.slice(bodyStart, lineEnd), 16);
        if (Number.isNaN(size)) return responses;
        bodyStart = lineEnd + 2;
        if (size === 0) {
          const trailerEnd = text.indexOf("\r\n", bodyStart);
          if (trailerEnd < 0) return responses;
          bodyStart = trailerEnd + 2;
          break;
        }
        if (bodyStart + size + 2 > text.length) return responses;
        body += text.slice(bodyStart, bodyStart + size);
        bodyStart += size + 2;
      }
    } else {
      const length = Number(headers["content-length"] ?? "0");
      if (bodyStart + length > text.length) break;
      body = text.slice(bodyStart, bodyStart + length);
      bodyStart += length;
    }
    responses.push({
      status: Number(match[1]),
      headers,
      body: Buffer.from(body, "latin1").toString("utf8"),
    });
    at = bodyStart;
  }
  return responses;
}

/**
 * Writes hand-made bytes to a fresh TCP connection and reads until `responses`
 * complete responses arrived (default 1; Infinity to see everything), the server
 * closes the connection, nothing new arrived for `idleMs`, or `timeoutMs` passed.
 */
export async function rawExchange(
  target: Target,
  request: Uint8Array | string,
  options: { responses?: number; idleMs?: number; timeoutMs?: number } = {},
): Promise<RawExchange> {
  const wanted = options.responses ?? 1;
  const idleMs = options.idleMs ?? 1_000;
  const deadline = Date.now() + (options.timeoutMs ?? 5_000);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: target.port });
  const chunks: Uint8Array[] = [];
  let closed = false;
  try {
    const bytes = typeof request === "string" ? Buffer.from(request, "latin1") : request;
    try {
      let written = 0;
      while (written < bytes.byteLength) written += await conn.write(bytes.subarray(written));
    } catch {
      // The server may close while we still write (e.g. 1000 headers): read what it said.
    }
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const wait = Math.min(idleMs, deadline - Date.now());
      if (wait <= 0) break;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const read = await Promise.race([
        conn.read(buffer).catch(() => null),
        new Promise<"idle">((resolve) => timer = setTimeout(() => resolve("idle"), wait)),
      ]);
      clearTimeout(timer);
      if (read === "idle") break;
      if (read === null) {
        closed = true;
        break;
      }
      chunks.push(buffer.slice(0, read));
      if (parseResponses(concat(chunks)).length >= wanted) break;
    }
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
  const all = concat(chunks);
  const responses = parseResponses(all);
  for (const response of responses) collectedBodies.push(response.body);
  return { responses, closed, raw: Buffer.from(all).toString("latin1") };
}

/** The head of a request to `target` (request line, Host, then the given lines), ending in CRLF CRLF. */
export function rawHead(target: Target, lines: string[], method = "POST"): string {
  return [`${method} ${target.path} HTTP/1.1`, "Host: 127.0.0.1", ...lines, "", ""].join("\r\n");
}

/** The usual header lines of a signed request (webhookHeaders()), in wire form. */
export function signedLines(
  request: SignedRequest,
  contentLength = request.body.byteLength,
): string[] {
  return [
    ...Object.entries(webhookHeaders(request)).map(([name, value]) => `${name}: ${value}`),
    `Content-Length: ${contentLength}`,
  ];
}

/** A complete, single, exact valid request in wire form (latin1 string). */
export function rawRequest(
  target: Target,
  request: SignedRequest,
  extraLines: string[] = [],
): string {
  return rawHead(target, [...signedLines(request), ...extraLines]) +
    Buffer.from(request.body).toString("latin1");
}

// ---------------------------------------------------------------------------
// Secrets must never come back
// ---------------------------------------------------------------------------

/** What a leak of a `whsec_` secret could look like: whole, base64 part, first 12 chars, key as hex/base64url. */
export function secretForms(secret: string): string[] {
  const encoded = secret.slice("whsec_".length);
  const bytes = Buffer.from(encoded, "base64");
  return [
    secret,
    encoded,
    secret.slice(0, 12),
    encoded.slice(0, 12),
    bytes.toString("hex"),
    bytes.toString("base64url"),
  ];
}

export function assertNoSecretIn(
  texts: string[],
  where: string,
  secrets: string[] = stackSecrets(),
) {
  for (const secret of secrets) {
    for (const form of secretForms(secret)) {
      const hits = texts.filter((text) => text.includes(form)).length;
      assert.equal(hits, 0, `${where}: ${hits} text(s) contain a form of the signing secret`);
    }
  }
}
