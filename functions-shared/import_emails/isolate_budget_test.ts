import assert from "node:assert/strict";
import { BYTES_PER_MESSAGE, chunkGrant, createIsolateBudget, runWindow } from "./isolate_budget.ts";

const run = { maxSeconds: 100, stopGraceSeconds: 20 };

Deno.test("a run in a fresh instance keeps its own budget: 100 s, then 20 s to close", () => {
  const window = runWindow(1_000, { startedAt: 0, wallClockMs: 400_000, ...run });
  assert.deepEqual(window, { deadline: 101_000, stopAt: 121_000, mustFinishBy: 400_000 });
});

Deno.test("a run late in the instance's life ends 10 s before its wall clock, closing included", () => {
  // A request at the half-life (75 s of 150 s), the last one the instance takes.
  const window = runWindow(75_000, { startedAt: 0, wallClockMs: 150_000, ...run });
  assert.deepEqual(window, { deadline: 120_000, stopAt: 140_000, mustFinishBy: 150_000 });
});

Deno.test("a short wall clock scales the margin and the grace down with it", () => {
  const window = runWindow(0, { startedAt: 0, wallClockMs: 20_000, ...run });
  assert.deepEqual(window, { deadline: 14_000, stopAt: 18_000, mustFinishBy: 20_000 });
});

Deno.test("at most maxConcurrentRuns at once; the next waits for a slot", async () => {
  const budget = createIsolateBudget({
    wallClockSeconds: 150,
    maxConcurrentRuns: 1,
    maxMessages: 10,
  });
  assert.equal(await budget.enter({ until: Date.now() + 5_000 }), "entered");
  const waiting = budget.enter({ until: Date.now() + 5_000 });
  let settled = false;
  waiting.then(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(settled, false, "no slot while the first run holds it");
  budget.leave();
  assert.equal(await waiting, "waited");
  budget.leave();
});

Deno.test("a waiting run is refused when its time passes or the instance shuts down", async () => {
  const budget = createIsolateBudget({
    wallClockSeconds: 150,
    maxConcurrentRuns: 1,
    maxMessages: 10,
  });
  await budget.enter({ until: Date.now() + 5_000 });
  assert.equal(await budget.enter({ until: Date.now() + 10 }), "refused");
  const shutdown = new AbortController();
  const waiting = budget.enter({ until: Date.now() + 5_000, signal: shutdown.signal });
  shutdown.abort();
  assert.equal(await waiting, "refused");
  budget.leave();
  // The refused ones took no slot.
  assert.equal(await budget.enter({ until: Date.now() + 10 }), "entered");
  budget.leave();
});

Deno.test("chunkGrant: what a chunk may reserve of the instance, as a table", () => {
  const instance = {
    maxMessages: 100,
    received: 0,
    receivedBytes: 0,
    reserved: 0,
  };
  const cases: [string, number, Partial<typeof instance>, number][] = [
    ["a fresh instance grants the whole chunk", 10, {}, 10],
    ["received messages are spent", 10, { received: 95 }, 5],
    ["chunks in flight elsewhere are held back", 10, { received: 80, reserved: 15 }, 5],
    ["nothing left: nothing granted", 10, { received: 100 }, 0],
    ["more received than the budget (a chunk overran): nothing", 10, { received: 104 }, 0],
    ["bytes count as messages", 10, { received: 80, receivedBytes: 15 * BYTES_PER_MESSAGE }, 5],
    ["the bytes alone spend it", 10, { receivedBytes: 100 * BYTES_PER_MESSAGE }, 0],
    ["bytes short of a message cost nothing yet", 10, { receivedBytes: BYTES_PER_MESSAGE - 1 }, 10],
    ["asking for nothing grants nothing", 0, {}, 0],
  ];
  for (const [why, wanted, state, granted] of cases) {
    assert.equal(chunkGrant(wanted, { ...instance, ...state }), granted, why);
  }
});

Deno.test("the instance is charged for what arrives: UIDs the server did not send go back", () => {
  const budget = createIsolateBudget({
    wallClockSeconds: 150,
    maxConcurrentRuns: 2,
    maxMessages: 10,
  });
  assert.equal(budget.reserve(8), 8);
  assert.equal(budget.messagesLeft(), 2, "reserved while the chunk is in flight");
  assert.equal(budget.reserve(8), 2, "a chunk side by side gets only what is left");
  budget.settle(8, { messages: 0, bytes: 0 }); // a server that sent nothing
  assert.equal(budget.messagesLeft(), 8, "nothing arrived, nothing charged");
  budget.settle(2, { messages: 2, bytes: 100 });
  assert.equal(budget.messagesLeft(), 8, "two arrived: 10 - 2");
  assert.equal(budget.reserve(100), 8);
  budget.settle(8, { messages: 8, bytes: 100 });
  assert.equal(budget.messagesLeft(), 0);
  assert.equal(budget.reserve(1), 0);
});

Deno.test("the instance's bytes count too: a few huge messages spend it", () => {
  const budget = createIsolateBudget({
    wallClockSeconds: 150,
    maxConcurrentRuns: 2,
    maxMessages: 10,
  });
  const taken = budget.reserve(3);
  budget.settle(taken, { messages: 3, bytes: 10 * BYTES_PER_MESSAGE });
  assert.equal(budget.messagesLeft(), 0, "3 messages and their bytes: 3 + 10 of 10");
  assert.equal(budget.reserve(1), 0);
});

Deno.test("waiting() counts the runs waiting for a slot", async () => {
  const budget = createIsolateBudget({
    wallClockSeconds: 150,
    maxConcurrentRuns: 1,
    maxMessages: 10,
  });
  await budget.enter({ until: Date.now() + 5_000 });
  assert.equal(budget.waiting(), 0);
  const second = budget.enter({ until: Date.now() + 5_000 });
  assert.equal(budget.waiting(), 1);
  budget.leave();
  assert.equal(await second, "waited");
  assert.equal(budget.waiting(), 0);
  budget.leave();
});
