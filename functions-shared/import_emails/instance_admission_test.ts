import assert from "node:assert/strict";
import {
  admitRun,
  MAX_EMPTY_CHUNKS,
  MIN_TURN_MS,
  REQUEST_FACTOR,
  runAllowance,
  runChunkBudget,
  yieldsTurn,
} from "./instance_admission.ts";
import { createIsolateBudget } from "./isolate_budget.ts";

const START = 1_800_000_000_000;
const NOTHING = { messages: 0, bytes: 0 };
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

Deno.test("an admitted run draws chunk by chunk; the instance is charged for what arrives", async () => {
  const { isolate, now } = instance();
  const first = await admitRun(isolate, { limits, now });
  assert.ok(first.admitted);
  assert.equal(first.started, START);
  assert.deepEqual(first.window, {
    deadline: START + 100_000,
    stopAt: START + 120_000,
    mustFinishBy: START + 150_000,
  });
  assert.equal(isolate.messagesLeft(), 7, "nothing reserved up front");
  const second = await admitRun(isolate, { limits, now });
  assert.ok(second.admitted);
  assert.equal(first.budget.take(4), 4);
  assert.equal(second.budget.take(4), 3, "a run side by side takes only what is left");
  first.budget.settle(4, { messages: 1, bytes: 10 });
  second.budget.settle(3, { messages: 0, bytes: 0 });
  assert.equal(isolate.messagesLeft(), 6, "7, less the one message that arrived");
  assert.equal(first.budget.requested, 4);
  assert.equal(first.budget.received, 1);
  first.leave();
  second.leave();
});

Deno.test("runAllowance: a run's own share of a chunk, as a table", () => {
  const max = 10;
  const cases: [
    string,
    { requested: number; received: number; inFlight: number; emptyChunks?: number },
    number,
  ][] = [
    ["a fresh run may take its whole budget", { requested: 0, received: 0, inFlight: 0 }, 10],
    ["what arrived is spent", { requested: 6, received: 6, inFlight: 0 }, 4],
    ["chunks in flight count as if they all arrive", { requested: 9, received: 3, inFlight: 6 }, 1],
    ["UIDs that never arrived cost nothing of the receive budget", {
      requested: 8,
      received: 0,
      inFlight: 0,
    }, 10],
    ["five chunks in a row brought nothing: the server is asked no more", {
      requested: 5,
      received: 0,
      inFlight: 0,
      emptyChunks: MAX_EMPTY_CHUNKS,
    }, 0],
    ["four in a row: it is asked again", {
      requested: 4,
      received: 0,
      inFlight: 0,
      emptyChunks: MAX_EMPTY_CHUNKS - 1,
    }, 10],
    ["but a run asks for at most REQUEST_FACTOR times its budget", {
      requested: max * REQUEST_FACTOR - 3,
      received: 0,
      inFlight: 0,
    }, 3],
    ["asked for enough: nothing more", {
      requested: max * REQUEST_FACTOR,
      received: 0,
      inFlight: 0,
    }, 0],
    ["received its budget: nothing more", { requested: 10, received: 10, inFlight: 0 }, 0],
  ];
  for (const [why, run, allowed] of cases) assert.equal(runAllowance(run, max), allowed, why);
});

Deno.test("yieldsTurn: a run yields its slot only when another waits and it had its turn", () => {
  const cases: [string, { waiting: number; heldMs: number }, boolean][] = [
    ["nobody waits: keep going", { waiting: 0, heldMs: 60_000 }, false],
    ["someone waits, the turn is not over", { waiting: 1, heldMs: MIN_TURN_MS - 1 }, false],
    ["someone waits and the turn is over", { waiting: 1, heldMs: MIN_TURN_MS }, true],
    ["several wait", { waiting: 3, heldMs: MIN_TURN_MS * 5 }, true],
  ];
  for (const [why, state, yields] of cases) assert.equal(yieldsTurn(state), yields, why);
});

Deno.test("a run holding its slot yields once another run waits for one and its turn is over", async () => {
  const { isolate, now, advance } = instance({ maxConcurrentRuns: 1 });
  const holder = await admitRun(isolate, { limits, now });
  assert.ok(holder.admitted);
  advance(MIN_TURN_MS * 10);
  assert.equal(holder.budget.yieldTurn(), false, "nobody waits");
  const waiter = admitRun(isolate, { limits, now });
  assert.equal(holder.budget.yieldTurn(), true);
  holder.leave();
  const next = await waiter;
  assert.ok(next.admitted);
  assert.equal(next.budget.yieldTurn(), false, "the new holder gets its own turn");
  next.leave();
});

Deno.test("an instance whose messages are spent or whose wall clock is nearly over admits no run", async () => {
  const spent = instance({ maxMessages: 3 });
  spent.isolate.settle(spent.isolate.reserve(3), { messages: 3, bytes: 0 });
  const refused = await admitRun(spent.isolate, { limits, now: spent.now });
  assert.equal(refused.admitted, false);
  assert.equal(!refused.admitted && refused.why, "its messages are spent");
  refused.leave();

  const late = instance({ at: START + 141_000 });
  const tooLate = await admitRun(late.isolate, { limits, now: late.now });
  assert.equal(!tooLate.admitted && tooLate.why, "its wall clock is nearly over");
  tooLate.leave();
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
  refused.leave(); // never entered: must not free the holder's slot
  const again = new AbortController();
  const third = admitRun(isolate, { limits, now, shutdown: again.signal });
  again.abort();
  assert.equal((await third).admitted, false, "the slot is still the holder's");
  holder.leave();
  const after = await admitRun(isolate, { limits, now });
  assert.ok(after.admitted, "the slot is free once the holder leaves");
});

Deno.test("a run's chunk budget stops after MAX_EMPTY_CHUNKS empty chunks in a row, and an arrival resets the count", () => {
  const { isolate, now } = instance({ maxMessages: 1_000 });
  const budget = runChunkBudget(isolate, { maxMessages: 100, enteredAt: START, now });
  for (let i = 0; i < MAX_EMPTY_CHUNKS - 1; i++) budget.settle(budget.take(10), NOTHING);
  budget.settle(budget.take(10), { messages: 1, bytes: 10 }); // one arrived: the row is broken
  for (let i = 0; i < MAX_EMPTY_CHUNKS - 1; i++) budget.settle(budget.take(10), NOTHING);
  assert.equal(budget.take(10), 10, "four in a row: still asked");
  budget.settle(10, NOTHING);
  assert.equal(budget.take(10), 0, "five in a row: no more");
  assert.equal(isolate.messagesLeft(), 999, "only the one message that arrived was charged");
});

Deno.test("a SEARCH listing is charged to the instance: a hundred UIDs cost about a message", () => {
  const { isolate, now } = instance({ maxMessages: 9_000 });
  const budget = runChunkBudget(isolate, { maxMessages: 100, enteredAt: START, now });
  budget.listed(0);
  assert.equal(isolate.messagesLeft(), 9_000, "an empty listing costs nothing");
  budget.listed(300_000); // a hostile listing (tests/fair_share_tick_test.ts lists 100,000)
  const charged = 9_000 - isolate.messagesLeft();
  assert.ok(charged >= 2_900 && charged <= 3_100, `${charged} messages' worth charged`);
});
