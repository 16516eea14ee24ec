import assert from "node:assert/strict";
import type { ImportJob } from "../import_emails/import_run.ts";
import { createMemoryLogger } from "../platform/log.ts";
import type { AcceptOutcome, FinalStatus, RunStore } from "../runs/run_store.ts";
import {
  buildClaims,
  jsonbText,
  signClaims,
  webhookHeaders,
} from "../wire/client/signed_request.ts";
import { generateSecret, parseKeyring } from "../wire/standard_webhooks.ts";
import { createCronAutoSyncApp, MAX_BODY_BYTES } from "./app.ts";

const NOW = 1_800_000_000; // unix seconds of the injected clock
const USER_ID = "6a1f2e3d-4c5b-4a69-8b7c-1d2e3f4a5b6c";
const URL = "http://localhost:54321/functions/v1/cron-auto-sync";
const SECRET = generateSecret();
const OTHER_SECRET = generateSecret();

const ERROR_CODES: Record<number, string> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  503: "unavailable",
};

/** An in-memory RunStore: a replay ledger by request id, plus a forced outcome. */
class FakeRunStore implements RunStore {
  calls: Array<{ method: string; args: unknown[] }> = [];
  seen = new Set<string>();
  constructor(private outcome?: AcceptOutcome | Error) {}

  acceptRequest(requestId: string, runId: string, userId: string): Promise<AcceptOutcome> {
    this.calls.push({ method: "acceptRequest", args: [requestId, runId, userId] });
    if (this.outcome instanceof Error) return Promise.reject(this.outcome);
    if (this.outcome) return Promise.resolve(this.outcome);
    if (this.seen.has(requestId)) return Promise.resolve("replayed");
    this.seen.add(requestId);
    return Promise.resolve("accepted");
  }
  requestManualRun(userId: string): Promise<{ runId: string } | { retryAfterSeconds: number }> {
    this.calls.push({ method: "requestManualRun", args: [userId] });
    return Promise.resolve({ runId: crypto.randomUUID() });
  }
  startRun(runId: string): Promise<boolean> {
    this.calls.push({ method: "startRun", args: [runId] });
    return Promise.resolve(true);
  }
  finishRun(runId: string, status: FinalStatus, options?: unknown): Promise<boolean> {
    this.calls.push({ method: "finishRun", args: [runId, status, options] });
    return Promise.resolve(true);
  }
}

function setup(options: { outcome?: AcceptOutcome | Error; secrets?: string[] } = {}) {
  const store = new FakeRunStore(options.outcome);
  const jobs: ImportJob[] = [];
  const started: Promise<void>[] = [];
  const runImport = (job: ImportJob) => {
    jobs.push(job);
    const task = Promise.resolve();
    started.push(task);
    return task;
  };
  const backgrounded: Promise<unknown>[] = [];
  const log = createMemoryLogger();
  const keyring = parseKeyring(
    (options.secrets ?? [SECRET]).map((secret) => `v1,${secret}`).join("|"),
  );
  const app = createCronAutoSyncApp({
    keyring,
    store,
    runImport,
    background: (task) => backgrounded.push(task),
    log,
    now: () => NOW * 1000 + 999, // 999 ms into the second: the app must floor
  });
  return { app, store, jobs, started, backgrounded, log };
}

/** What Postgres' jsonb::text produces (what pg_net sends): keys by length then bytes, ": " and ", ". */
interface RequestOptions {
  claims?: Record<string, unknown>;
  /** Raw body text replacing the claims. */
  body?: string;
  /** Signed webhook-id / webhook-timestamp (default: run_id / iat). */
  id?: string;
  timestamp?: number;
  /** Keys that sign (default: the app's secret). */
  signWith?: string[];
  /** Header overrides; null removes a header. */
  headers?: Record<string, string | null>;
  method?: string;
}

/** A request shaped exactly like auto_sync.dispatch() sends it. */
function signedRequest(options: RequestOptions = {}) {
  const claims: Record<string, unknown> = {
    ...buildClaims(USER_ID, crypto.randomUUID(), { iat: NOW }),
    ...options.claims,
  };
  const keyring = parseKeyring(
    (options.signWith ?? [SECRET]).map((secret) => `v1,${secret}`).join("|"),
  );
  const body = options.body ?? jsonbText(claims);
  const signed = signClaims(keyring, claims, {
    body,
    id: options.id,
    timestamp: options.timestamp,
  });
  const headers = new Headers(webhookHeaders(signed));
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  const method = options.method ?? "POST";
  const request = new Request(URL, {
    method,
    headers,
    body: method === "GET" || method === "HEAD" ? null : body,
  });
  return { request, claims, body };
}

/** A stream of `size` bytes in 1 KiB chunks, with no Content-Length. */
function streamOf(size: number): ReadableStream<Uint8Array> {
  let left = size;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (left <= 0) return controller.close();
      const chunk = new Uint8Array(Math.min(1024, left)).fill(0x20);
      left -= chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
}

function assertNoSecret(text: string, label: string) {
  for (const secret of [SECRET, OTHER_SECRET]) {
    assert.ok(!text.includes(secret), `${label} contains a signing secret`);
    assert.ok(!text.includes(secret.slice("whsec_".length)), `${label} contains a key's base64`);
    assert.ok(
      !text.includes(secret.slice("whsec_".length, "whsec_".length + 12)),
      `${label} contains key material`,
    );
  }
  assert.ok(!text.includes("whsec_"), `${label} mentions whsec_`);
}

type Setup = ReturnType<typeof setup>;

/** Sends the request and checks a refusal: status, generic body, no database work, no secret. */
async function assertRefused(ctx: Setup, request: Request, status: number, storeCalled = false) {
  const response = await ctx.app.fetch(request);
  const text = await response.text();
  assert.equal(response.status, status, text);
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(JSON.parse(text), { error: ERROR_CODES[status] });
  assert.equal(ctx.store.calls.length, storeCalled ? 1 : 0, "store calls");
  assert.deepEqual(ctx.jobs, [], "no import started");
  assert.equal(ctx.backgrounded.length, 0, "no background task");
  assertNoSecret(text, "response body");
  assertNoSecret(ctx.log.lines.join("\n"), "log");
  return response;
}

async function refusal(status: number, options: RequestOptions, setupOptions = {}) {
  const ctx = setup(setupOptions);
  await assertRefused(ctx, signedRequest(options).request, status);
  return ctx;
}

// --- success ---

Deno.test("a signed request as the dispatcher sends it is accepted with 202 and its run_id", async () => {
  const ctx = setup();
  const { request, claims } = signedRequest();
  const response = await ctx.app.fetch(request);
  assert.equal(response.status, 202);
  assert.deepEqual(await response.json(), { run_id: claims.run_id });
  assert.deepEqual(ctx.store.calls, [{
    method: "acceptRequest",
    args: [claims.run_id, claims.run_id, USER_ID],
  }]);
  assert.deepEqual(ctx.jobs, [{ runId: claims.run_id, userId: USER_ID }]);
  assert.equal(ctx.backgrounded.length, 1);
  assert.equal(ctx.backgrounded[0], ctx.started[0], "the import's promise goes to background()");
  assertNoSecret(ctx.log.lines.join("\n"), "log");
});

Deno.test("a request signed during a key rotation is accepted", async () => {
  const ctx = setup({ secrets: [OTHER_SECRET, SECRET] });
  for (const signWith of [[SECRET], [OTHER_SECRET], [OTHER_SECRET, SECRET]]) {
    const response = await ctx.app.fetch(signedRequest({ signWith }).request);
    assert.equal(response.status, 202);
  }
  assert.equal(ctx.jobs.length, 3);
});

Deno.test("a body of exactly 16 KiB is accepted", async () => {
  const ctx = setup();
  const base = signedRequest();
  const body = base.body + " ".repeat(MAX_BODY_BYTES - base.body.length);
  const { request } = signedRequest({ claims: base.claims, body });
  const response = await ctx.app.fetch(request);
  assert.equal(response.status, 202);
});

Deno.test("timestamps exactly 300 s from the clock pass the window", async () => {
  // 300 s ahead: accepted. 300 s behind: inside the window, but a request lives at
  // most 300 s, so its exp is now: refused as expired (403), not as unsigned (401).
  for (const [iat, status] of [[NOW + 300, 202], [NOW - 300, 403]]) {
    const ctx = setup();
    const response = await ctx.app.fetch(
      signedRequest({ claims: { iat, exp: iat + 300 } }).request,
    );
    assert.equal(response.status, status, `iat ${iat - NOW}`);
  }
});

Deno.test("a request claiming to live longer than 300 s is refused with 400", async () => {
  const ctx = setup();
  const response = await ctx.app.fetch(
    signedRequest({ claims: { iat: NOW, exp: NOW + 301 } }).request,
  );
  assert.equal(response.status, 400);
});

// --- refusals before any database work ---

Deno.test("GET is refused with 405 and Allow: POST", async () => {
  for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
    const ctx = setup();
    const response = await assertRefused(ctx, signedRequest({ method }).request, 405);
    assert.equal(response.headers.get("allow"), "POST");
  }
});

Deno.test("a non-JSON content type is refused with 415", async () => {
  for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"]) {
    await refusal(415, { headers: { "Content-Type": type } });
  }
  await refusal(415, { headers: { "Content-Type": null } });
});

Deno.test("a body over 16 KiB is refused with 413, with or without Content-Length", async () => {
  const base = signedRequest();
  const body = base.body + " ".repeat(MAX_BODY_BYTES + 1 - base.body.length);
  // Validly signed, with an honest Content-Length.
  await refusal(413, {
    claims: base.claims,
    body,
    headers: { "content-length": String(body.length) },
  });
  await refusal(413, { claims: base.claims, body }); // no Content-Length
  // A declared length over the limit is refused before reading.
  await refusal(413, { headers: { "content-length": String(10 * 1024 * 1024) } });

  const ctx = setup();
  const streamed = new Request(URL, {
    method: "POST",
    headers: signedRequest().request.headers,
    body: streamOf(10 * 1024 * 1024),
  });
  assert.equal(streamed.headers.get("content-length"), null);
  await assertRefused(ctx, streamed, 413);
});

Deno.test("a request missing a webhook header is refused with 401", async () => {
  for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
    await refusal(401, { headers: { [name]: null } });
  }
});

Deno.test("malformed webhook headers are refused with 401", async () => {
  await refusal(401, { headers: { "webhook-id": "run.1" } });
  await refusal(401, { headers: { "webhook-timestamp": `${NOW}.0` } });
  await refusal(401, { headers: { "webhook-timestamp": `+${NOW}` } });
  await refusal(401, { headers: { "webhook-signature": "v1,not-a-signature" } });
  await refusal(401, { headers: { "webhook-signature": "x".repeat(2000) } });
});

Deno.test("a timestamp outside ±300 s is refused with 401", async () => {
  for (const iat of [NOW - 301, NOW + 301, NOW - 86400]) {
    await refusal(401, { claims: { iat, exp: iat + 300 } });
  }
});

Deno.test("a bad signature is refused with 401", async () => {
  await refusal(401, { signWith: [OTHER_SECRET] }); // revoked or unknown key
  const base = signedRequest();
  // Signed body, then one claim changed in transit.
  const tampered = new Request(URL, {
    method: "POST",
    headers: base.request.headers,
    body: base.body.replace(USER_ID, "00000000-0000-4000-8000-000000000000"),
  });
  await assertRefused(setup(), tampered, 401);
  // Header timestamp moved without re-signing.
  const headers = new Headers(base.request.headers);
  headers.set("webhook-timestamp", String(NOW + 1));
  await assertRefused(setup(), new Request(URL, { method: "POST", headers, body: base.body }), 401);
});

Deno.test("claims failing the schema are refused with 400", async () => {
  await refusal(400, { body: "not json", id: crypto.randomUUID(), timestamp: NOW });
  await refusal(400, { claims: { sub: "not-a-uuid" } });
  await refusal(400, { claims: { admin: true } });
  await refusal(400, { claims: { exp: String(NOW + 300) } });
  await refusal(400, { claims: { iat: NOW + 0.5 }, timestamp: NOW });
});

Deno.test("a webhook-id different from run_id is refused with 400", async () => {
  await refusal(400, { id: crypto.randomUUID() });
});

Deno.test("iat different from webhook-timestamp is refused with 400", async () => {
  await refusal(400, { timestamp: NOW - 1 });
});

Deno.test("a wrong audience or scope is refused with 403", async () => {
  await refusal(403, { claims: { aud: "import-emails" } });
  await refusal(403, { claims: { scope: "admin" } });
});

Deno.test("an expired request is refused with 403", async () => {
  await refusal(403, { claims: { iat: NOW - 60, exp: NOW } });
  await refusal(403, { claims: { iat: NOW - 60, exp: NOW - 1 } });
});

Deno.test("checks run in order: method, type, size, headers, window, signature, claims", async () => {
  const big = " ".repeat(MAX_BODY_BYTES + 1);
  // Each request fails several checks; the earliest one answers.
  await refusal(405, {
    method: "DELETE",
    headers: { "Content-Type": "text/plain", "webhook-id": null },
  });
  await refusal(415, { body: big, headers: { "Content-Type": "text/plain", "webhook-id": null } });
  await refusal(413, { body: big, headers: { "webhook-id": null } });
  await refusal(401, {
    claims: { iat: NOW - 1000, aud: "x" },
    headers: { "webhook-id": "bad id" },
  });
  await refusal(401, { claims: { iat: NOW - 1000, exp: NOW - 900 }, signWith: [OTHER_SECRET] });
  await refusal(401, { body: "not json", id: crypto.randomUUID(), signWith: [OTHER_SECRET] });
  await refusal(400, { claims: { aud: "x", exp: NOW - 1 }, id: crypto.randomUUID() });
  await refusal(403, { claims: { aud: "x" } }, { outcome: "replayed" });
});

// --- database outcomes ---

Deno.test("store refusals map to 409 and 404 without starting an import", async () => {
  const cases: Array<[AcceptOutcome, number]> = [
    ["replayed", 409],
    ["unknown_run", 404],
    ["wrong_user", 404],
    ["schedule_disabled", 409],
    ["not_dispatched", 409],
  ];
  for (const [outcome, status] of cases) {
    const ctx = setup({ outcome });
    const { request, claims } = signedRequest();
    await assertRefused(ctx, request, status, true);
    assert.deepEqual(ctx.store.calls[0].args, [claims.run_id, claims.run_id, USER_ID]);
  }
});

Deno.test("the same signed request sent twice is refused the second time with 409", async () => {
  const ctx = setup();
  const { request } = signedRequest();
  const replay = request.clone();
  assert.equal((await ctx.app.fetch(request)).status, 202);
  const response = await ctx.app.fetch(replay);
  assert.equal(response.status, 409);
  assert.deepEqual(await response.json(), { error: "conflict" });
  assert.equal(ctx.jobs.length, 1);
});

Deno.test("a store failure answers 503 without its message and starts no import", async () => {
  const ctx = setup({ outcome: new Error(`connection to postgres://postgres:hunter2@db failed`) });
  const response = await ctx.app.fetch(signedRequest().request);
  assert.equal(response.status, 503);
  const text = await response.text();
  assert.deepEqual(JSON.parse(text), { error: "unavailable" });
  assert.ok(!text.includes("hunter2"));
  assert.equal(ctx.jobs.length, 0);
  assert.equal(ctx.backgrounded.length, 0);
  assert.ok(
    ctx.log.lines.some((line) => JSON.parse(line).level === "error"),
    "the failure is logged",
  );
  assertNoSecret(ctx.log.lines.join("\n"), "log");
});

// --- what is said and logged ---

Deno.test("refusal bodies never carry the reason, which goes to the log", async () => {
  const ctx = setup();
  const response = await ctx.app.fetch(signedRequest({ claims: { aud: "import-emails" } }).request);
  const text = await response.text();
  assert.equal(text, '{"error":"forbidden"}');
  const logged = ctx.log.lines.map((line) => JSON.parse(line));
  assert.ok(
    logged.some((line) =>
      line.level === "warn" && line.status === 403 && /audience/.test(line.reason)
    ),
  );
});

Deno.test("logs of every refusal and of a success never contain the signing secret", async () => {
  const ctx = setup({ secrets: [SECRET, OTHER_SECRET] });
  const requests = [
    signedRequest({ method: "GET" }).request,
    signedRequest({ headers: { "Content-Type": "text/plain" } }).request,
    signedRequest({ headers: { "webhook-signature": `v1,${SECRET.slice(6)}` } }).request,
    signedRequest({ headers: { "webhook-id": SECRET } }).request,
    signedRequest({ signWith: [generateSecret()] }).request,
    signedRequest({ claims: { scope: "x" } }).request,
    signedRequest().request,
  ];
  for (const request of requests) {
    const response = await ctx.app.fetch(request);
    assertNoSecret(await response.text(), `response ${response.status}`);
  }
  // Unsigned refusals are logged once per reason per window (rejection_log.ts).
  const statuses = new Set(ctx.log.lines.map((line) => JSON.parse(line).status));
  for (const status of [405, 415, 401, 403]) {
    assert.ok(statuses.has(status), `a ${status} is logged`);
  }
  assertNoSecret(ctx.log.lines.join("\n"), "log");
});
