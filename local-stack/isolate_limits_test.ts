import assert from "node:assert/strict";
import {
  isolateLimits,
  judgeIsolate,
  PLATFORM_LIMITS,
  SELF_HOSTED_LIMITS,
} from "./isolate_limits.ts";

const limits = { ...PLATFORM_LIMITS, wallClockMs: 10_000, cpuSoftMs: 100, cpuHardMs: 200 };
const fresh = { retired: false, beforeunloadSent: false };

Deno.test("defaults are the hosted free plan's: 150 s wall clock, 1 s / 2 s CPU, 256 MB", () => {
  assert.deepEqual(isolateLimits({}, {}), PLATFORM_LIMITS);
  assert.deepEqual(PLATFORM_LIMITS, {
    wallClockMs: 150_000,
    cpuSoftMs: 1_000,
    cpuHardMs: 2_000,
    memoryMb: 256,
    beforeunloadPct: 90,
  });
});

Deno.test("self-hosted workers get the main router's 150 MB and 60 s; flags still win", () => {
  assert.deepEqual(isolateLimits({}, {}, "self-hosted"), SELF_HOSTED_LIMITS);
  assert.equal(SELF_HOSTED_LIMITS.memoryMb, 150);
  assert.equal(SELF_HOSTED_LIMITS.wallClockMs, 60_000);
  assert.equal(isolateLimits({ "memory-mb": "64" }, {}, "self-hosted").memoryMb, 64);
  assert.deepEqual(isolateLimits({}, {}, "hosted-legacy"), PLATFORM_LIMITS);
});

Deno.test("a flag beats the environment, which beats the default; nonsense is refused", () => {
  const got = isolateLimits(
    { "wall-clock-ms": "5000" },
    { STACK_FUNCTION_WALL_CLOCK_MS: "9000", STACK_FUNCTION_MEMORY_MB: "64" },
  );
  assert.equal(got.wallClockMs, 5000);
  assert.equal(got.memoryMb, 64);
  assert.throws(() => isolateLimits({ "cpu-hard-ms": "-1" }, {}), /Invalid --cpu-hard-ms/);
  assert.throws(() => isolateLimits({ "cpu-soft-ms": "3000" }, {}), /soft "3000" above hard/);
});

Deno.test("the isolate retires at half its wall clock, gets beforeunload at 90 %, ends at 100 %", () => {
  assert.deepEqual(judgeIsolate({ elapsedMs: 4_999, cpuMs: 0 }, fresh, limits), { action: "none" });
  assert.deepEqual(judgeIsolate({ elapsedMs: 5_000, cpuMs: 0 }, fresh, limits), {
    action: "retire",
    reason: "wall clock half-life",
  });
  const retired = { retired: true, beforeunloadSent: false };
  assert.deepEqual(judgeIsolate({ elapsedMs: 8_999, cpuMs: 0 }, retired, limits), {
    action: "none",
  });
  assert.deepEqual(judgeIsolate({ elapsedMs: 9_000, cpuMs: 0 }, retired, limits), {
    action: "beforeunload",
    reason: "wall clock",
  });
  const warned = { retired: true, beforeunloadSent: true };
  assert.deepEqual(judgeIsolate({ elapsedMs: 9_999, cpuMs: 0 }, warned, limits), {
    action: "none",
  });
  assert.deepEqual(judgeIsolate({ elapsedMs: 10_000, cpuMs: 0 }, warned, limits), {
    action: "terminate",
    reason: "wall clock",
  });
});

Deno.test("CPU adds up per isolate: soft retires, 90 % of hard warns, hard ends it", () => {
  assert.deepEqual(judgeIsolate({ elapsedMs: 0, cpuMs: 100 }, fresh, limits), {
    action: "retire",
    reason: "CPU soft limit",
  });
  assert.deepEqual(judgeIsolate({ elapsedMs: 0, cpuMs: 180 }, fresh, limits), {
    action: "beforeunload",
    reason: "CPU",
  });
  assert.deepEqual(judgeIsolate({ elapsedMs: 0, cpuMs: 200 }, fresh, limits), {
    action: "terminate",
    reason: "CPU",
  });
});
