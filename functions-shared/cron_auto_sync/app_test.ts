import assert from "node:assert/strict";
import type { ImportJob } from "../import_emails/import_run.ts";
import { createMemoryLogger } from "../platform/log.ts";
import type { AcceptOutcome, FinalStatus, RunStore } from "../runs/run_store.ts";
import { generateSecret, parseKeyring } from "../wire/standard_webhooks.ts";
import {
  assertGenericRefusal,
  assertNoSecret,
  NOW,
  OTHER_SECRET,
  SECRET,
  signedRequest,
  USER_ID,
} from "../../tests/support/cron_requests.ts";
import { createCronAutoSyncApp } from "./app.ts";

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
  continueRun(runId: string): Promise<string | null> {
    this.calls.push({ method: "continueRun", args: [runId] });
    return Promise.resolve(null);
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

type Setup = ReturnType<typeof setup>;

/** Sends the request and checks a refusal: status, generic body, no database work, no secret. */
async function assertRefused(ctx: Setup, request: Request, status: number, storeCalled = false) {
  const response = await assertGenericRefusal(await ctx.app.fetch(request), status);
  assert.equal(ctx.store.calls.length, storeCalled ? 1 : 0, "store calls");
  assert.deepEqual(ctx.jobs, [], "no import started");
  assert.equal(ctx.backgrounded.length, 0, "no background task");
  assertNoSecret(ctx.log.lines.join("\n"), "log");
  return response;
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

// --- the route: accepted once, then handed off ---

Deno.test("a refused request never reaches the store: claims are checked before the single-use ledger", async () => {
  // The middleware's own refusals are in signed_request_auth_test.ts; here, that the app
  // mounts it in front of the route: a store that would say "replayed" is never asked.
  const ctx = setup({ outcome: "replayed" });
  await assertRefused(ctx, signedRequest({ claims: { aud: "x" } }).request, 403);
  await assertRefused(ctx, signedRequest({ signWith: [OTHER_SECRET] }).request, 401);
});

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
