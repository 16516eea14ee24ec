import assert from "node:assert/strict";
import { createMemoryLogger, errorText } from "./log.ts";

Deno.test("errorText keeps an error's first line, bounded, for any thrown value", () => {
  assert.equal(errorText(new Error("first\nsecond")), "first");
  assert.equal(errorText("plain string"), "plain string");
  assert.equal(errorText(undefined), "undefined");
  assert.equal(errorText(new Error("x".repeat(1000))).length, 300);
});

Deno.test("the memory logger keeps one JSON line per call with level and fields", () => {
  const log = createMemoryLogger();
  log.warn("Something", { run_id: "r1" });
  assert.deepEqual(log.lines.map((line) => JSON.parse(line)), [
    { level: "warn", message: "Something", run_id: "r1" },
  ]);
});
