import assert from "node:assert/strict";
import { isolateShutdownSignal } from "./isolate_shutdown.ts";

Deno.test("the shutdown signal aborts on beforeunload, and only then", () => {
  const isolate = new EventTarget();
  const signal = isolateShutdownSignal(isolate);
  isolate.dispatchEvent(new Event("load"));
  assert.equal(signal.aborted, false);
  isolate.dispatchEvent(new Event("beforeunload"));
  assert.equal(signal.aborted, true);
  assert.match(String(signal.reason), /shutting down/);
});
