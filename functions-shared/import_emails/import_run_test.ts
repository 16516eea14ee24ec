import assert from "node:assert/strict";
import { createIsolateBudget, type IsolateBudget } from "./isolate_budget.ts";
import { createMemoryLogger } from "../platform/log.ts";
import type { AcceptOutcome, FinalStatus, RunStore } from "../runs/run_store.ts";
import { createImportRunner, DEFAULT_LIMITS, type ImportLimits } from "./import_run.ts";
import {
  authError,
  CREDENTIAL,
  type FakeFolder,
  type FakeMailOptions,
  FakeMailStore,
  fakeSession,
  mail,
  mailbox,
  USER_ID,
} from "../../tests/support/import_fakes.ts";

const RUN_ID = "0b7d3c1e-5f2a-4c9b-8e61-3a2f9d4c7b10";
const MAILBOX_1 = "11111111-1111-4111-8111-111111111111";
const MAILBOX_2 = "22222222-2222-4222-8222-222222222222";

// --- fakes ------------------------------------------------------------------

interface FinishCall {
  runId: string;
  status: FinalStatus;
  options?: { error?: string; details?: Record<string, unknown> };
}

/** An in-memory RunStore: startRun answers `started`; finishRun records and may fail. */
class FakeRunStore implements RunStore {
  startCalls: string[] = [];
  mustFinishBy: (number | undefined)[] = [];
  finishCalls: FinishCall[] = [];
  constructor(private started = true, private finishFailures = 0) {}
  acceptRequest(): Promise<AcceptOutcome> {
    return Promise.reject(new Error("acceptRequest is not part of an import run"));
  }
  requestManualRun(): Promise<{ runId: string } | { retryAfterSeconds: number }> {
    return Promise.reject(new Error("requestManualRun is not part of an import run"));
  }
  startRun(runId: string, options?: { mustFinishBy?: number }): Promise<boolean> {
    this.startCalls.push(runId);
    this.mustFinishBy.push(options?.mustFinishBy);
    return Promise.resolve(this.started);
  }
  finishRun(runId: string, status: FinalStatus, options?: FinishCall["options"]): Promise<boolean> {
    this.finishCalls.push({ runId, status, options });
    if (this.finishFailures > 0) {
      this.finishFailures--;
      return Promise.reject(new Error("connection reset"));
    }
    return Promise.resolve(true);
  }
  continueCalls: string[] = [];
  continueRun(runId: string): Promise<string | null> {
    this.continueCalls.push(runId);
    return Promise.resolve(null);
  }
  get finish(): FinishCall {
    assert.equal(this.finishCalls.length, 1, "finishRun is called exactly once");
    return this.finishCalls[0];
  }
}

function setup(
  options: {
    started?: boolean;
    finishFailures?: number;
    mail?: FakeMailOptions;
    /** Per mailbox id: an error to throw from connect, or the folders of a fake server. */
    servers?: Record<string, Error | Record<string, FakeFolder>>;
    limits?: Partial<ImportLimits>;
    shutdown?: AbortSignal;
    isolate?: IsolateBudget;
  } = {},
) {
  const store = new FakeRunStore(options.started ?? true, options.finishFailures ?? 0);
  const mailStore = new FakeMailStore(options.mail);
  const log = createMemoryLogger();
  const connects: Array<{ mailboxId: string; credential: string }> = [];
  const stopAts: number[] = [];
  const sessions: Array<ReturnType<typeof fakeSession>> = [];
  let clock = 1_800_000_000_000;
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const run = createImportRunner({
    store,
    mail: mailStore,
    log,
    limits: options.limits,
    shutdown: options.shutdown,
    isolate: options.isolate,
    now: () => (clock += 10),
    connect: (target, credential, bounds) => {
      connects.push({ mailboxId: target.id, credential });
      stopAts.push(bounds.stopAt);
      assert.equal(
        bounds.maxMessageBytes,
        limits.maxMessageBytes,
        "the session gets the byte bound",
      );
      assert.equal(bounds.fetchTimeoutMs, limits.fetchSeconds * 1000, "and the FETCH time cap");
      const server = options.servers?.[target.id];
      if (server instanceof Error) return Promise.reject(server);
      const fake = fakeSession(server ?? { INBOX: { uidValidity: 1, messages: [] } });
      sessions.push(fake);
      return Promise.resolve(fake.session);
    },
  });
  return {
    store,
    mail: mailStore,
    log,
    connects,
    stopAts,
    sessions,
    run: () => run({ runId: RUN_ID, userId: USER_ID }),
  };
}

type Ctx = ReturnType<typeof setup>;

/** Neither the run row, the mail store nor the log ever holds the credential. */
function assertNoCredential(ctx: Ctx) {
  const texts = {
    "run rows": JSON.stringify(ctx.store.finishCalls),
    "mail store calls": JSON.stringify(
      ctx.mail.calls.filter((call) => call.method !== "credential"),
      (_key, value) => typeof value === "bigint" ? value.toString() : value,
    ),
    "log": ctx.log.lines.join("\n"),
  };
  for (const [label, text] of Object.entries(texts)) {
    assert.ok(!text.includes(CREDENTIAL), `${label} contain the credential: ${text}`);
  }
}

// --- the run lifecycle -------------------------------------------------------

Deno.test("a run that is not in `accepted` is left alone: no mailbox work, no finishRun", async () => {
  const ctx = setup({ started: false, mail: { mailboxes: [mailbox(MAILBOX_1)] } });
  await ctx.run();
  assert.deepEqual(ctx.store.startCalls, [RUN_ID]);
  assert.deepEqual(ctx.store.finishCalls, []);
  assert.deepEqual(ctx.mail.calls, [], "not even the mailbox list is read");
  assert.deepEqual(ctx.connects, []);
  assert.ok(ctx.log.lines.some((line) => JSON.parse(line).level === "warn"));
});

Deno.test("without a mailbox the run ends as skipped with the reason, never succeeded", async () => {
  const ctx = setup();
  await ctx.run();
  assert.deepEqual(ctx.store.startCalls, [RUN_ID]);
  const finish = ctx.store.finish;
  assert.equal(finish.runId, RUN_ID);
  assert.equal(finish.status, "skipped");
  assert.equal(finish.options?.error, "no mailbox configured");
  assert.deepEqual(finish.options?.details, {
    requested: 0,
    fetched: 0,
    inserted: 0,
    duplicates: 0,
  });
  assert.deepEqual(ctx.mail.calls, [{ method: "importTargets", args: [USER_ID] }]);
  assert.deepEqual(ctx.connects, []);
  assert.ok(ctx.log.lines.some((line) => line.includes("no mailbox configured")));
});

Deno.test("when every mailbox is busy the run is skipped as already running, without connecting", async () => {
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1), mailbox(MAILBOX_2)], busy: [MAILBOX_1, MAILBOX_2] },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "skipped");
  assert.match(finish.options?.error ?? "", /already running/);
  assert.deepEqual(ctx.connects, []);
  assert.deepEqual(ctx.mail.callsOf("credential"), [], "no credential is read for a busy mailbox");
  assert.deepEqual(
    ctx.mail.callsOf("recordOutcome"),
    [],
    "a busy mailbox's own state is not touched",
  );
  assert.deepEqual(ctx.mail.callsOf("claim").map((args) => args[0]), [MAILBOX_1, MAILBOX_2]);
  const details = finish.options?.details as { mailboxes: unknown[] };
  assert.deepEqual(details.mailboxes, [
    { id: MAILBOX_1, already_running: true },
    { id: MAILBOX_2, already_running: true },
  ]);
});

Deno.test("a paused mailbox is neither claimed nor connected; alone it makes the run skipped with the reason", async () => {
  const pause = "Paused after 3 failed logins: update the password or token to resume";
  const ctx = setup({ mail: { mailboxes: [mailbox(MAILBOX_1, { paused_reason: pause })] } });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "skipped");
  assert.equal(finish.options?.error, pause);
  assert.deepEqual(ctx.mail.calls.map((call) => call.method), ["importTargets"]);
  assert.deepEqual(ctx.connects, []);
  const details = finish.options?.details as { mailboxes: unknown[] };
  assert.deepEqual(details.mailboxes, [{ id: MAILBOX_1, paused: true, error: pause }]);
});

Deno.test("busy and paused mailboxes together: skipped, naming both reasons", async () => {
  const pause = "Paused after 3 failed logins: update the password or token to resume";
  const ctx = setup({
    mail: {
      mailboxes: [mailbox(MAILBOX_1), mailbox(MAILBOX_2, { paused_reason: pause })],
      busy: [MAILBOX_1],
    },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "skipped");
  assert.match(finish.options?.error ?? "", /already running/);
  assert.ok(finish.options?.error?.includes(pause), finish.options?.error);
  assert.deepEqual(ctx.connects, []);
});

Deno.test("a paused mailbox next to a working one: the working one is imported, the run is partial", async () => {
  const pause = "Paused after 3 failed logins: update the password or token to resume";
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1, { paused_reason: pause }), mailbox(MAILBOX_2)] },
    servers: { [MAILBOX_2]: { INBOX: { uidValidity: 5, messages: [mail(1)] } } },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "partial");
  assert.equal(finish.options?.error, pause);
  assert.deepEqual(ctx.connects.map((c) => c.mailboxId), [MAILBOX_2]);
  assert.deepEqual(ctx.mail.callsOf("claim").map((args) => args[0]), [MAILBOX_2]);
});

Deno.test("the lease is claimed per mailbox for this run, for the time budget plus a minute", async () => {
  const ctx = setup({ mail: { mailboxes: [mailbox(MAILBOX_1)] }, limits: { maxSeconds: 30 } });
  await ctx.run();
  assert.deepEqual(ctx.mail.callsOf("claim"), [[MAILBOX_1, RUN_ID, 90]]);
  assert.deepEqual(ctx.mail.callsOf("release"), [[MAILBOX_1, RUN_ID]]);
});

Deno.test("one busy mailbox does not stop the others: the run succeeds with the rest", async () => {
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1), mailbox(MAILBOX_2)], busy: [MAILBOX_1] },
    servers: { [MAILBOX_2]: { INBOX: { uidValidity: 5, messages: [mail(1)] } } },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "succeeded");
  assert.equal(finish.options?.error, undefined);
  assert.deepEqual(ctx.connects.map((c) => c.mailboxId), [MAILBOX_2]);
  const details = finish.options?.details as {
    inserted: number;
    mailboxes: Array<Record<string, unknown>>;
  };
  assert.equal(details.inserted, 1);
  assert.deepEqual(details.mailboxes[0], { id: MAILBOX_1, already_running: true });
});

// --- a successful import --------------------------------------------------------

Deno.test("a successful import stores the messages, records success, releases, and reports counts", async () => {
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1)] },
    servers: { [MAILBOX_1]: { INBOX: { uidValidity: 9, messages: [mail(1), mail(2), mail(3)] } } },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "succeeded");
  assert.equal(finish.options?.error, undefined);
  const details = finish.options?.details as Record<string, unknown>;
  assert.equal(details.fetched, 3);
  assert.equal(details.inserted, 3);
  assert.equal(details.duplicates, 0);
  assert.equal(details.has_more, false);
  assert.deepEqual(details.uidvalidity_resets, []);
  assert.equal(typeof details.duration_ms, "number");
  assert.ok((details.bytes as number) > 0);

  assert.deepEqual(ctx.connects, [{ mailboxId: MAILBOX_1, credential: CREDENTIAL }]);
  const [batch] = ctx.mail.batches;
  assert.deepEqual(batch.records.map((r) => [r.uid, r.message_key, r.subject]), [
    [1, "mid:m1@example.test", "Message 1"],
    [2, "mid:m2@example.test", "Message 2"],
    [3, "mid:m3@example.test", "Message 3"],
  ]);
  assert.deepEqual(batch.progress, {
    uidValidity: 9,
    lastUid: 3,
    highestModseq: 7n,
    messageCount: 3,
  });
  assert.deepEqual(ctx.mail.callsOf("recordOutcome"), [[MAILBOX_1, {
    error: null,
    authFailed: false,
  }]]);
  assert.deepEqual(ctx.mail.callsOf("release"), [[MAILBOX_1, RUN_ID]]);
  assert.equal(ctx.sessions[0].closed, 1, "the IMAP session is closed");
  // release comes after everything else for the mailbox
  assert.equal(ctx.mail.calls.at(-1)?.method, "release");
  assertNoCredential(ctx);
});

Deno.test("a run that reaches its message budget ends partial with has_more, and says so", async () => {
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1)] },
    servers: { [MAILBOX_1]: { INBOX: { uidValidity: 9, messages: [mail(1), mail(2), mail(3)] } } },
    limits: { maxMessages: 2, chunkSize: 1 },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "partial");
  assert.match(finish.options?.error ?? "", /Budget reached/);
  const details = finish.options?.details as Record<string, unknown>;
  assert.equal(details.has_more, true);
  assert.equal(details.fetched, 2);
  assert.deepEqual(ctx.mail.batches.map((b) => b.progress.lastUid), [1, 2]);
  assert.deepEqual(
    ctx.mail.batches.map((b) => b.progress.highestModseq),
    [null, null],
    "an unfinished folder never claims HIGHESTMODSEQ",
  );
  assert.deepEqual(ctx.mail.callsOf("release"), [[MAILBOX_1, RUN_ID]]);
});

Deno.test("a new UIDVALIDITY resets the folder and is reported", async () => {
  const ctx = setup({
    mail: {
      mailboxes: [mailbox(MAILBOX_1)],
      states: [{ folder: "INBOX", uid_validity: 1, last_uid: 50 }],
    },
    servers: { [MAILBOX_1]: { INBOX: { uidValidity: 2, messages: [mail(1)] } } },
  });
  await ctx.run();
  assert.deepEqual(ctx.mail.callsOf("resetFolder"), [[MAILBOX_1, "INBOX", 2]]);
  const details = ctx.store.finish.options?.details as Record<string, unknown>;
  assert.deepEqual(details.uidvalidity_resets, ["INBOX"]);
  assert.equal(details.fetched, 1, "UID 1 is fetched again although the old last UID was 50");
});

Deno.test("no mailbox is started once the run's time is up: partial, and the next run continues", async () => {
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1), mailbox(MAILBOX_2)] },
    servers: { [MAILBOX_1]: { INBOX: { uidValidity: 1, messages: [] } } },
    // The fake clock moves 10 ms per reading: the start, then one reading before
    // each mailbox; the second comes after a 0.015 s budget.
    limits: { maxSeconds: 0.015 },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "partial");
  assert.deepEqual(ctx.connects.map((c) => c.mailboxId), [MAILBOX_1]);
  assert.deepEqual(ctx.mail.callsOf("claim").map((args) => args[0]), [MAILBOX_1]);
  const details = finish.options?.details as { has_more: boolean; mailboxes: unknown[] };
  assert.equal(details.has_more, true);
  assert.deepEqual(details.mailboxes[1], { id: MAILBOX_2, not_started: true });
});

Deno.test("beforeunload: the run stops at the next chunk boundary, saves, releases and ends partial at once", async () => {
  const shutdown = new AbortController();
  const messages = Array.from({ length: 10 }, (_, i) => mail(i + 1));
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1), mailbox(MAILBOX_2)] },
    servers: { [MAILBOX_1]: { INBOX: { uidValidity: 3, messages } } },
    limits: { chunkSize: 2 },
    shutdown: shutdown.signal,
  });
  // The isolate announces its end while the first chunk is being written.
  const storeBatch = ctx.mail.storeBatch.bind(ctx.mail);
  ctx.mail.storeBatch = (...args) => {
    shutdown.abort();
    return storeBatch(...args);
  };
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "partial");
  assert.equal(
    finish.options?.error,
    "Stopped early: the function instance is shutting down; the next run continues",
  );
  // The chunk being written and the one already fetched are saved; nothing after.
  const saved = ctx.mail.batches.flatMap((batch) => batch.records.map((r) => r.uid));
  assert.deepEqual(saved, [1, 2, 3, 4]);
  assert.equal(ctx.mail.batches.at(-1)?.progress.lastUid, 4, "the state covers what was saved");
  assert.deepEqual(ctx.mail.callsOf("release"), [[MAILBOX_1, RUN_ID]], "the lease is released");
  assert.deepEqual(ctx.connects.map((c) => c.mailboxId), [MAILBOX_1], "no mailbox is started");
  const details = finish.options?.details as { has_more: boolean; mailboxes: unknown[] };
  assert.equal(details.has_more, true);
  assert.deepEqual(details.mailboxes[1], { id: MAILBOX_2, not_started: true });
});

Deno.test("beforeunload before anything was saved: the run fails with the reason, nothing is claimed", async () => {
  const shutdown = new AbortController();
  shutdown.abort();
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1)] },
    servers: { [MAILBOX_1]: { INBOX: { uidValidity: 3, messages: [mail(1)] } } },
    shutdown: shutdown.signal,
  });
  await ctx.run();
  assert.equal(ctx.store.finish.status, "failed");
  assert.equal(
    ctx.store.finish.options?.error,
    "The function instance shut down before anything was imported; the next run retries",
  );
  assert.deepEqual(ctx.connects, []);
  assert.deepEqual(ctx.mail.callsOf("claim"), []);
});

// --- the function instance's shared budget (isolate_budget.ts) -------------------

const START = 1_800_000_000_000; // the fake clock's start (setup)

Deno.test("the run records when its instance is gone, and its time ends before the instance's wall clock", async () => {
  // The instance started 100 s before the run; its wall clock is 150 s.
  const isolate = createIsolateBudget({
    wallClockSeconds: 150,
    maxConcurrentRuns: 2,
    maxMessages: 1000,
    startedAt: START - 100_000,
  });
  const ctx = setup({ mail: { mailboxes: [mailbox(MAILBOX_1)] }, isolate });
  await ctx.run();
  assert.deepEqual(ctx.store.mustFinishBy, [START + 50_000]);
  assert.equal(ctx.connects.length, 1);
  // 10 s left for saving and finish_run before the instance ends (not 100 s + 20 s).
  assert.deepEqual(ctx.stopAts, [START + 40_000]);
});

Deno.test("an instance whose messages are spent starts no import: partial, the next run continues", async () => {
  const isolate = createIsolateBudget({
    wallClockSeconds: 150,
    maxConcurrentRuns: 2,
    maxMessages: 5,
    startedAt: START,
  });
  isolate.settle(isolate.reserve(5), { messages: 5, bytes: 0 });
  const ctx = setup({ mail: { mailboxes: [mailbox(MAILBOX_1)] }, isolate });
  await ctx.run();
  assert.deepEqual(ctx.connects, []);
  assert.equal(ctx.store.finish.status, "partial");
  assert.equal(
    ctx.store.finish.options?.error,
    "Not started: this function instance had no budget left (its messages are spent); the next run continues",
  );
  assert.equal((ctx.store.finish.options?.details as { has_more: boolean }).has_more, true);
});

Deno.test("runs side by side share the instance's messages: each takes at most what is left", async () => {
  const isolate = createIsolateBudget({
    wallClockSeconds: 150,
    maxConcurrentRuns: 2,
    maxMessages: 7,
    startedAt: START,
  });
  const messages = Array.from({ length: 10 }, (_, i) => mail(i + 1));
  const first = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1)] },
    servers: { [MAILBOX_1]: { INBOX: { uidValidity: 1, messages } } },
    limits: { maxMessages: 5 },
    isolate,
  });
  const second = setup({
    mail: { mailboxes: [mailbox(MAILBOX_2)] },
    servers: { [MAILBOX_2]: { INBOX: { uidValidity: 1, messages } } },
    limits: { maxMessages: 5 },
    isolate,
  });
  await Promise.all([first.run(), second.run()]);
  const fetched = [first, second].map((ctx) =>
    (ctx.store.finish.options?.details as { fetched: number }).fetched
  );
  assert.deepEqual(fetched, [5, 2]);
  assert.equal(isolate.messagesLeft(), 0);
});

Deno.test("a server that announces mail and sends none spends nothing of the instance; details say so", async () => {
  const isolate = createIsolateBudget({
    wallClockSeconds: 150,
    maxConcurrentRuns: 2,
    maxMessages: 20,
    startedAt: START,
  });
  const messages = Array.from({ length: 30 }, (_, i) => mail(i + 1));
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1)] },
    servers: { [MAILBOX_1]: { INBOX: { uidValidity: 1, messages, fetchNothing: true } } },
    limits: { maxMessages: 10, chunkSize: 5 },
    isolate,
  });
  await ctx.run();
  const details = ctx.store.finish.options?.details as Record<string, unknown>;
  assert.equal(details.fetched, 0);
  assert.equal(details.requested, 20, "asked for at most twice its budget, then stopped");
  assert.equal(details.has_more, true);
  assert.equal(isolate.messagesLeft(), 20, "nothing arrived, nothing charged");
});

Deno.test("the run's details carry the contract finish_run reads: requested, fetched, inserted, has_more", async () => {
  const messages = Array.from({ length: 12 }, (_, i) => mail(i + 1));
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1)] },
    servers: { [MAILBOX_1]: { INBOX: { uidValidity: 1, messages } } },
    limits: { maxMessages: 5, chunkSize: 5 },
  });
  await ctx.run();
  const details = ctx.store.finish.options?.details as Record<string, unknown>;
  assert.equal(details.requested, 5);
  assert.equal(details.fetched, 5);
  assert.equal(details.inserted, 5);
  assert.equal(details.has_more, true);
  assert.deepEqual(ctx.store.continueCalls, [RUN_ID], "a partial run with more is offered on");
});

Deno.test("a run that imported everything is not offered for continuation", async () => {
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1)] },
    servers: { [MAILBOX_1]: { INBOX: { uidValidity: 1, messages: [mail(1), mail(2)] } } },
  });
  await ctx.run();
  assert.equal(ctx.store.finish.status, "succeeded");
  assert.deepEqual(ctx.store.continueCalls, []);
});

// --- failures --------------------------------------------------------------------

Deno.test("a failed mailbox's detail goes to the log, scrubbed before it is cut", async () => {
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1)] },
    // The credential straddles the log's 300-character cut.
    servers: { [MAILBOX_1]: new Error(`${"x".repeat(290)}${CREDENTIAL}`) },
  });
  await ctx.run();
  const logged = ctx.log.lines.map((line) => JSON.parse(line))
    .find((line) => line.message === "Mailbox import failed");
  assert.ok(logged?.error.startsWith("xxxx"), JSON.stringify(logged));
  assert.ok(!ctx.log.lines.join("\n").includes(CREDENTIAL.slice(0, 8)), "no part of it survives");
});

Deno.test("a refused login is recorded as an auth failure, fails the run, and never leaks the credential", async () => {
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1)] },
    servers: { [MAILBOX_1]: authError(`AUTHENTICATE failed for alice with ${CREDENTIAL}`) },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "failed");
  assert.match(
    finish.options?.error ?? "",
    /Login failed for "alice@example.test" at imap\.example\.test/,
  );
  assert.match(finish.options?.error ?? "", /password/);
  const outcomes = ctx.mail.callsOf("recordOutcome");
  assert.equal(outcomes.length, 1);
  const [id, outcome] = outcomes[0] as [string, { error: string; authFailed: boolean }];
  assert.equal(id, MAILBOX_1);
  assert.equal(outcome.authFailed, true);
  assert.match(outcome.error, /Login failed/);
  assert.deepEqual(ctx.mail.callsOf("release"), [[MAILBOX_1, RUN_ID]], "released after the error");
  const details = finish.options?.details as { mailboxes: Array<{ id: string; error?: string }> };
  assert.equal(details.mailboxes[0].id, MAILBOX_1);
  assert.match(details.mailboxes[0].error ?? "", /Login failed/);
  assertNoCredential(ctx);
});

Deno.test("a generic connect error quoting the credential is scrubbed everywhere", async () => {
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1)] },
    servers: { [MAILBOX_1]: new Error(`Unexpected reply to LOGIN alice ${CREDENTIAL}: BAD`) },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "failed");
  assert.match(
    finish.options?.error ?? "",
    /IMAP error at imap\.example\.test: Unexpected reply to LOGIN alice \[redacted\]: BAD/,
  );
  const [, outcome] = ctx.mail.callsOf("recordOutcome")[0] as [string, { authFailed: boolean }];
  assert.equal(outcome.authFailed, false);
  assertNoCredential(ctx);
});

Deno.test("a pause reason returned by recordOutcome appears in the run's error", async () => {
  const pause = "Paused after 3 failed logins: update the password or token to resume";
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1)], pauseReason: pause },
    servers: { [MAILBOX_1]: authError("Authentication failed") },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "failed");
  assert.ok(finish.options?.error?.includes(pause), finish.options?.error);
  assert.match(finish.options?.error ?? "", /^Login failed .*\. Paused after 3 failed logins/);
  const details = finish.options?.details as { mailboxes: Array<{ error?: string }> };
  assert.ok(details.mailboxes[0].error?.includes(pause));
});

Deno.test("a missing credential fails the mailbox with a clear text, without connecting", async () => {
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1)], credentials: { [MAILBOX_1]: null } },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "failed");
  assert.match(finish.options?.error ?? "", /No password or token is stored for this mailbox/);
  assert.deepEqual(ctx.connects, []);
  assert.deepEqual(
    ctx.mail.callsOf("recordOutcome").map((args) =>
      (args[1] as { authFailed: boolean }).authFailed
    ),
    [
      false,
    ],
  );
  assert.deepEqual(ctx.mail.callsOf("release"), [[MAILBOX_1, RUN_ID]]);
});

Deno.test("an error inside the session still closes it and releases the mailbox", async () => {
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1, { folders: ["Archive"] })] },
    // The server has no "Archive": STATUS answers nothing.
    servers: { [MAILBOX_1]: { INBOX: { uidValidity: 1, messages: [] } } },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "failed");
  assert.match(finish.options?.error ?? "", /Folder "Archive" does not exist on the server/);
  assert.equal(ctx.sessions[0].closed, 1);
  assert.deepEqual(ctx.mail.callsOf("release"), [[MAILBOX_1, RUN_ID]]);
  const details = finish.options?.details as {
    mailboxes: Array<{ imap_commands?: Record<string, number> }>;
  };
  assert.deepEqual(
    details.mailboxes[0].imap_commands,
    { STATUS: 1 },
    "commands are reported after an error too",
  );
});

Deno.test("release is called for every claimed mailbox even when recording and releasing fail", async () => {
  const ctx = setup({
    mail: {
      mailboxes: [mailbox(MAILBOX_1), mailbox(MAILBOX_2)],
      recordOutcomeError: new Error("db down"),
      releaseError: new Error("db down"),
    },
    servers: { [MAILBOX_1]: authError("nope"), [MAILBOX_2]: new Error("boom") },
  });
  await ctx.run();
  assert.deepEqual(ctx.mail.callsOf("release"), [[MAILBOX_1, RUN_ID], [MAILBOX_2, RUN_ID]]);
  assert.equal(ctx.store.finish.status, "failed");
  assert.match(
    ctx.store.finish.options?.error ?? "",
    /Login failed.*; IMAP error at imap\.example\.test: boom/,
  );
});

Deno.test("a failing mailbox after one that imported makes the run partial, with both reported", async () => {
  const ctx = setup({
    mail: { mailboxes: [mailbox(MAILBOX_1), mailbox(MAILBOX_2)] },
    servers: {
      [MAILBOX_1]: { INBOX: { uidValidity: 1, messages: [mail(1)] } },
      [MAILBOX_2]: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
    },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "partial");
  assert.equal(finish.options?.error, 'Cannot connect to the mail server "imap.example.test:993"');
  const details = finish.options?.details as {
    fetched: number;
    mailboxes: Array<Record<string, unknown>>;
  };
  assert.equal(details.fetched, 1);
  assert.equal(details.mailboxes.length, 2);
  assert.equal(
    details.mailboxes[1].error,
    'Cannot connect to the mail server "imap.example.test:993"',
  );
  const logged = ctx.log.lines.map((line) => JSON.parse(line))
    .find((line) => line.message === "Mailbox import failed");
  assert.equal(logged?.code, "ECONNREFUSED", "the detail goes to the log");
  assert.deepEqual(ctx.mail.callsOf("release").map((args) => args[0]), [MAILBOX_1, MAILBOX_2]);
});

Deno.test("an unexpected store error fails the run with a generic text and is logged", async () => {
  const ctx = setup({
    mail: { importTargetsError: new Error(`password authentication failed: ${CREDENTIAL}`) },
  });
  await ctx.run();
  const finish = ctx.store.finish;
  assert.equal(finish.status, "failed");
  assert.equal(finish.options?.error, "Import failed unexpectedly; see the function log");
  assert.ok(ctx.log.lines.some((line) => JSON.parse(line).level === "error"));
});

Deno.test("when recording the outcome fails, the run is marked failed and the runner does not throw", async () => {
  const ctx = setup({ finishFailures: 1 });
  await ctx.run();
  assert.deepEqual(ctx.store.finishCalls.map((call) => call.status), ["skipped", "failed"]);
  assert.equal(ctx.store.finishCalls[1].runId, RUN_ID);
  assert.ok(ctx.log.lines.some((line) => JSON.parse(line).level === "error"));
});

Deno.test("when even marking the run failed fails, the runner still does not throw", async () => {
  const ctx = setup({ finishFailures: 2 });
  await ctx.run();
  assert.deepEqual(ctx.store.finishCalls.map((call) => call.status), ["skipped", "failed"]);
});
