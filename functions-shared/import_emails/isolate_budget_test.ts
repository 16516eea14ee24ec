import assert from "node:assert/strict";
import { createIsolateBudget, runWindow } from "./isolate_budget.ts";

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

Deno.test("messages are shared over the instance's life; spending can be given back", () => {
  const budget = createIsolateBudget({
    wallClockSeconds: 150,
    maxConcurrentRuns: 2,
    maxMessages: 10,
  });
  budget.spend(8);
  assert.equal(budget.messagesLeft(), 2);
  budget.spend(-3);
  assert.equal(budget.messagesLeft(), 5);
  budget.spend(50);
  assert.equal(budget.messagesLeft(), 0);
});
