import assert from "node:assert/strict";
import { createMemoryLogger } from "../platform/log.ts";
import type { AcceptOutcome, FinalStatus, RunStore } from "../runs/run_store.ts";
import { createImportEmailsApp } from "./app.ts";
import type { ImportJob } from "./import_run.ts";

const USER_ID = "6a1f2e3d-4c5b-4a69-8b7c-1d2e3f4a5b6c";
const RUN_ID = "0b7d3c1e-5f2a-4c9b-8e61-3a2f9d4c7b10";
const GOOD_TOKEN = "header.payload.signature";
const URL = "http://localhost:54321/functions/v1/import-emails";

type ManualRunAnswer = { runId: string } | { retryAfterSeconds: number };

/**
 * An in-memory RunStore that records calls; requestManualRun answers `answer`
 * (default: RUN_ID) or fails.
 */
class FakeRunStore implements RunStore {
  calls: Array<{ method: string; args: unknown[] }> = [];
  constructor(private failure?: Error, private answer: ManualRunAnswer = { runId: RUN_ID }) {}
  acceptRequest(requestId: string, runId: string, userId: string): Promise<AcceptOutcome> {
    this.calls.push({ method: "acceptRequest", args: [requestId, runId, userId] });
    return Promise.resolve("accepted");
  }
  requestManualRun(userId: string): Promise<ManualRunAnswer> {
    this.calls.push({ method: "requestManualRun", args: [userId] });
    return this.failure ? Promise.reject(this.failure) : Promise.resolve(this.answer);
  }
  startRun(runId: string): Promise<boolean> {
    this.calls.push({ method: "startRun", args: [runId] });
    return Promise.resolve(true);
  }
  finishRun(runId: string, status: FinalStatus, options?: unknown): Promise<boolean> {
    this.calls.push({ method: "finishRun", args: [runId, status, options] });
    return Promise.resolve(true);
  }
  continueRun(runId: string): Promise<string | null> {
    this.calls.push({ method: "continueRun", args: [runId] });
    return Promise.resolve(null);
  }
}

function setup(options: { storeFailure?: Error; answer?: ManualRunAnswer } = {}) {
  const store = new FakeRunStore(options.storeFailure, options.answer);
  const authorizations: Array<string | null> = [];
  const jobs: ImportJob[] = [];
  const started: Promise<void>[] = [];
  const backgrounded: Promise<unknown>[] = [];
  const log = createMemoryLogger();
  const app = createImportEmailsApp({
    // A fake verifier: one known token belongs to USER_ID, nothing else is valid.
    authenticate: (authorization) => {
      authorizations.push(authorization);
      return Promise.resolve(authorization === `Bearer ${GOOD_TOKEN}` ? { userId: USER_ID } : null);
    },
    store,
    runImport: (job) => {
      jobs.push(job);
      const task = Promise.resolve();
      started.push(task);
      return task;
    },
    background: (task) => backgrounded.push(task),
    log,
  });
  return { app, store, authorizations, jobs, started, backgrounded, log };
}

function request(
  options: { method?: string; authorization?: string; body?: string } = {},
): Request {
  const headers = new Headers({ "Content-Type": "application/json" });
  if (options.authorization !== undefined) headers.set("Authorization", options.authorization);
  const method = options.method ?? "POST";
  return new Request(URL, {
    method,
    headers,
    body: method === "GET" ? null : options.body ?? "{}",
  });
}

Deno.test("GET is refused with 405 and Allow: POST, OPTIONS, before authentication", async () => {
  const ctx = setup();
  const response = await ctx.app.fetch(
    request({ method: "GET", authorization: `Bearer ${GOOD_TOKEN}` }),
  );
  assert.equal(response.status, 405);
  assert.equal(response.headers.get("allow"), "POST, OPTIONS");
  assert.deepEqual(await response.json(), { error: "method_not_allowed" });
  assert.deepEqual(ctx.authorizations, []);
  assert.deepEqual(ctx.store.calls, []);
  assert.deepEqual(ctx.jobs, []);
});

Deno.test("a request without a token or with an invalid one is refused with 401", async () => {
  for (const authorization of [undefined, "Bearer wrong.token.value", "Basic x"]) {
    const ctx = setup();
    const response = await ctx.app.fetch(request({ authorization }));
    assert.equal(response.status, 401, String(authorization));
    assert.deepEqual(await response.json(), { error: "unauthorized" });
    assert.deepEqual(
      ctx.authorizations,
      [authorization ?? null],
      "the header reaches the verifier",
    );
    assert.deepEqual(ctx.store.calls, [], "no database work");
    assert.deepEqual(ctx.jobs, []);
    assert.equal(ctx.backgrounded.length, 0);
  }
});

Deno.test("a valid token starts a manual run for that user: 202 with its run_id", async () => {
  const ctx = setup();
  const response = await ctx.app.fetch(request({ authorization: `Bearer ${GOOD_TOKEN}` }));
  assert.equal(response.status, 202);
  assert.deepEqual(await response.json(), { run_id: RUN_ID });
  assert.deepEqual(ctx.store.calls, [{ method: "requestManualRun", args: [USER_ID] }]);
  assert.deepEqual(ctx.jobs, [{ runId: RUN_ID, userId: USER_ID }]);
  assert.equal(ctx.backgrounded.length, 1);
  assert.equal(ctx.backgrounded[0], ctx.started[0], "the import's promise goes to background()");
});

Deno.test("a repeat within the minute is refused from the instance's memory, without the database", async () => {
  const ctx = setup();
  const first = await ctx.app.fetch(request({ authorization: `Bearer ${GOOD_TOKEN}` }));
  assert.equal(first.status, 202);
  const second = await ctx.app.fetch(request({ authorization: `Bearer ${GOOD_TOKEN}` }));
  assert.equal(second.status, 429);
  const wait = Number(second.headers.get("retry-after"));
  assert.ok(wait >= 59 && wait <= 60, `Retry-After ${wait}`);
  assert.deepEqual(await second.json(), { error: "too_many_requests" });
  assert.deepEqual(
    ctx.store.calls,
    [{ method: "requestManualRun", args: [USER_ID] }],
    "the database was asked once, for the first",
  );
  assert.equal(ctx.jobs.length, 1);
});

Deno.test("a refusal from the database is remembered for its Retry-After", async () => {
  const ctx = setup({ answer: { retryAfterSeconds: 42 } });
  await ctx.app.fetch(request({ authorization: `Bearer ${GOOD_TOKEN}` }));
  const again = await ctx.app.fetch(request({ authorization: `Bearer ${GOOD_TOKEN}` }));
  assert.equal(again.status, 429);
  assert.ok(Number(again.headers.get("retry-after")) <= 42);
  assert.equal(ctx.store.calls.length, 1, "the second refusal cost no database call");
});

Deno.test("the request body cannot name another user", async () => {
  const ctx = setup();
  const body = JSON.stringify({
    userId: "00000000-0000-4000-8000-000000000000",
    user_id: "x",
    sub: "x",
  });
  const response = await ctx.app.fetch(request({ authorization: `Bearer ${GOOD_TOKEN}`, body }));
  assert.equal(response.status, 202);
  assert.deepEqual(ctx.store.calls, [{ method: "requestManualRun", args: [USER_ID] }]);
  assert.deepEqual(ctx.jobs, [{ runId: RUN_ID, userId: USER_ID }]);
});

Deno.test("a second sync within the minute is refused with 429 and Retry-After, and imports nothing", async () => {
  const ctx = setup({ answer: { retryAfterSeconds: 42 } });
  const response = await ctx.app.fetch(request({ authorization: `Bearer ${GOOD_TOKEN}` }));
  assert.equal(response.status, 429);
  assert.equal(response.headers.get("retry-after"), "42");
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(
    await response.json(),
    { error: "too_many_requests" },
    "a generic body, no run id",
  );
  assert.deepEqual(ctx.store.calls, [{ method: "requestManualRun", args: [USER_ID] }]);
  assert.deepEqual(ctx.jobs, [], "runImport is not called");
  assert.equal(ctx.backgrounded.length, 0, "nothing goes to background()");
  assert.equal(
    response.headers.get("access-control-allow-origin"),
    "*",
    "a 429 carries CORS headers too",
  );
  assert.ok(
    ctx.log.lines.some((line) => JSON.parse(line).user_id === USER_ID),
    "the refusal is logged with the user id",
  );
});

Deno.test("Retry-After carries the store's seconds exactly, whatever they are", async () => {
  for (const seconds of [1, 60]) {
    const ctx = setup({ answer: { retryAfterSeconds: seconds } });
    const response = await ctx.app.fetch(request({ authorization: `Bearer ${GOOD_TOKEN}` }));
    assert.equal(response.status, 429);
    assert.equal(response.headers.get("retry-after"), String(seconds));
    await response.body?.cancel();
    assert.deepEqual(ctx.jobs, []);
  }
});

Deno.test("an unauthenticated request is refused with 401 before the rate limit is consulted", async () => {
  const ctx = setup({ answer: { retryAfterSeconds: 42 } });
  const response = await ctx.app.fetch(request({ authorization: "Bearer wrong.token.value" }));
  assert.equal(response.status, 401);
  assert.equal(response.headers.get("retry-after"), null);
  assert.deepEqual(ctx.store.calls, []);
  await response.body?.cancel();
});

Deno.test("a store failure answers 503 with a generic body and starts no import", async () => {
  const ctx = setup({
    storeFailure: new Error("connection to postgres://postgres:hunter2@db failed"),
  });
  const response = await ctx.app.fetch(request({ authorization: `Bearer ${GOOD_TOKEN}` }));
  assert.equal(response.status, 503);
  const text = await response.text();
  assert.deepEqual(JSON.parse(text), { error: "unavailable" });
  assert.ok(!text.includes("hunter2"));
  assert.deepEqual(ctx.jobs, []);
  assert.equal(ctx.backgrounded.length, 0);
  assert.ok(
    ctx.log.lines.some((line) => JSON.parse(line).level === "error"),
    "the failure is logged",
  );
});

Deno.test("the bearer token never reaches a response or the log", async () => {
  const ctx = setup();
  for (const authorization of [`Bearer ${GOOD_TOKEN}`, "Bearer wrong.token.value"]) {
    const response = await ctx.app.fetch(request({ authorization }));
    const text = await response.text();
    assert.ok(!text.includes(GOOD_TOKEN) && !text.includes("wrong.token.value"), text);
  }
  const logged = ctx.log.lines.join("\n");
  assert.ok(!logged.includes(GOOD_TOKEN) && !logged.includes("wrong.token.value"), logged);
});

Deno.test("a CORS preflight gets 204 and the CORS headers, without authentication or a run", async () => {
  const ctx = setup();
  const response = await ctx.app.fetch(new Request(URL, { method: "OPTIONS" }));
  assert.equal(response.status, 204);
  assert.equal(response.headers.get("access-control-allow-origin"), "*");
  assert.match(response.headers.get("access-control-allow-headers") ?? "", /authorization/);
  assert.match(response.headers.get("access-control-allow-methods") ?? "", /POST/);
  assert.deepEqual(ctx.authorizations, []);
  assert.deepEqual(ctx.store.calls, []);
});

Deno.test("answers carry the CORS headers too, refusals included", async () => {
  const ctx = setup();
  for (const authorization of [`Bearer ${GOOD_TOKEN}`, undefined]) {
    const response = await ctx.app.fetch(request({ authorization }));
    assert.equal(response.headers.get("access-control-allow-origin"), "*", String(response.status));
    await response.body?.cancel();
  }
});
