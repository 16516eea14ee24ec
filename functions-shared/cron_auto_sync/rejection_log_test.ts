import assert from "node:assert/strict";
import { createMemoryLogger } from "../platform/log.ts";
import { createRejectionLog } from "./rejection_log.ts";

function setup() {
  const log = createMemoryLogger();
  let time = 1_000_000;
  const logRejection = createRejectionLog(log, { windowMs: 10_000, now: () => time });
  const entries = () => log.lines.map((line) => JSON.parse(line));
  return { logRejection, entries, advance: (ms: number) => (time += ms) };
}

Deno.test("a flood of unsigned refusals logs one line per reason per window, then the count suppressed", () => {
  const { logRejection, entries, advance } = setup();
  for (let i = 0; i < 1000; i++) logRejection(401, "no signature matches a key of the keyring");
  logRejection(401, "timestamp outside tolerance");
  logRejection(413, "body over 16384 bytes");
  assert.equal(entries().length, 3);
  advance(10_000);
  logRejection(401, "no signature matches a key of the keyring");
  assert.equal(entries().length, 4);
  assert.equal(entries()[3].suppressed_since_last, 999);
});

Deno.test("refusals of correctly signed requests are always logged, with their run id", () => {
  const { logRejection, entries } = setup();
  for (const status of [400, 403, 404, 409]) {
    logRejection(status, "replayed", "run-1");
    logRejection(status, "replayed", "run-2");
  }
  assert.equal(entries().length, 8);
  assert.deepEqual(entries().map((entry) => entry.run_id).slice(0, 2), ["run-1", "run-2"]);
});
