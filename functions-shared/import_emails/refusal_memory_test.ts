import assert from "node:assert/strict";
import { createRefusalMemory, MAX_REMEMBERED } from "./refusal_memory.ts";

const USER = "00000000-0000-4000-8000-000000000001";

Deno.test("a remembered refusal answers until it ends, then the database is asked again", () => {
  let clock = 0;
  const memory = createRefusalMemory(() => clock);
  assert.equal(memory.retryAfter(USER), null, "nothing known: ask the database");
  memory.remember(USER, 60);
  const cases: [number, number | null][] = [[0, 60], [1_000, 59], [59_001, 1], [60_000, null]];
  for (const [at, expected] of cases) {
    clock = at;
    assert.equal(memory.retryAfter(USER), expected, `at ${at} ms`);
  }
});

Deno.test("the memory is bounded: the oldest user is forgotten first", () => {
  const memory = createRefusalMemory(() => 0);
  for (let i = 0; i <= MAX_REMEMBERED; i++) memory.remember(`user-${i}`, 60);
  assert.equal(memory.retryAfter("user-0"), null, "forgotten: the database decides");
  assert.equal(memory.retryAfter("user-1"), 60);
  assert.equal(memory.retryAfter(`user-${MAX_REMEMBERED}`), 60);
});
