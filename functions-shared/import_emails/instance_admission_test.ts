import assert from "node:assert/strict";
import { admitRun } from "./instance_admission.ts";
import { createIsolateBudget } from "./isolate_budget.ts";

const START = 1_800_000_000_000;
const limits = { maxMessages: 5, maxSeconds: 100, stopGraceSeconds: 20 };

function instance(options: { maxMessages?: number; maxConcurrentRuns?: number; at?: number } = {}) {
  let clock = options.at ?? START;
  const now = () => clock;
  const isolate = createIsolateBudget({
    wallClockSeconds: 150,
    maxConcurrentRuns: options.maxConcurrentRuns ?? 2,
    maxMessages: options.maxMessages ?? 7,
    startedAt: START,
    now,
  });
  return { isolate, now, advance: (ms: number) => (clock += ms) };
}

Deno.test("an admitted run reserves its messages up front; leaving gives back what it did not request", async () => {
  const { isolate, now } = instance();
  const first = await admitRun(isolate, { limits, now });
  assert.ok(first.admitted);
  assert.equal(first.maxMessages, 5);
  assert.equal(first.started, START);
  assert.deepEqual(first.window, {
    deadline: START + 100_000,
    stopAt: START + 120_000,
    mustFinishBy: START + 150_000,
  });
  assert.equal(isolate.messagesLeft(), 2, "reserved up front");
  const second = await admitRun(isolate, { limits, now });
  assert.ok(second.admitted);
  assert.equal(second.maxMessages, 2, "a run side by side takes only what is left");
  first.leave(3);
  assert.equal(isolate.messagesLeft(), 2, "the 2 the first run did not request come back");
  second.leave(2);
  assert.equal(isolate.messagesLeft(), 2, "7, less the 3 + 2 the runs requested");
});

Deno.test("an instance whose messages are spent or whose wall clock is nearly over admits no run", async () => {
  const spent = instance({ maxMessages: 3 });
  spent.isolate.spend(3);
  const refused = await admitRun(spent.isolate, { limits, now: spent.now });
  assert.equal(refused.admitted, false);
  assert.equal(!refused.admitted && refused.why, "its messages are spent");
  refused.leave(0);

  const late = instance({ at: START + 141_000 });
  const tooLate = await admitRun(late.isolate, { limits, now: late.now });
  assert.equal(!tooLate.admitted && tooLate.why, "its wall clock is nearly over");
  tooLate.leave(0);
  assert.equal(late.isolate.messagesLeft(), 7, "nothing is reserved for a run not admitted");
});

Deno.test("a run that finds every slot taken is refused when the instance shuts down, and frees nothing", async () => {
  const { isolate, now } = instance({ maxConcurrentRuns: 1 });
  const holder = await admitRun(isolate, { limits, now });
  assert.ok(holder.admitted);
  const shutdown = new AbortController();
  const waiting = admitRun(isolate, { limits, now, shutdown: shutdown.signal });
  shutdown.abort();
  const refused = await waiting;
  assert.equal(!refused.admitted && refused.why, "it was busy with other imports");
  refused.leave(0); // never entered: must not free the holder's slot
  const again = new AbortController();
  const third = admitRun(isolate, { limits, now, shutdown: again.signal });
  again.abort();
  assert.equal((await third).admitted, false, "the slot is still the holder's");
  holder.leave(0);
  const after = await admitRun(isolate, { limits, now });
  assert.ok(after.admitted, "the slot is free once the holder leaves");
});
