import assert from "node:assert/strict";
import { createMemoryLogger } from "../log.ts";
import type { AcceptOutcome, FinalStatus, RunStore } from "../run_store.ts";
import { createImportRunner } from "./import_run.ts";

const USER_ID = "6a1f2e3d-4c5b-4a69-8b7c-1d2e3f4a5b6c";
const RUN_ID = "0b7d3c1e-5f2a-4c9b-8e61-3a2f9d4c7b10";

interface FinishCall {
  runId: string;
  status: FinalStatus;
  options?: { error?: string; details?: Record<string, unknown> };
}

/** An in-memory RunStore: startRun answers `started`; finishRun records and may fail once. */
class FakeRunStore implements RunStore {
  startCalls: string[] = [];
  finishCalls: FinishCall[] = [];
  constructor(private started: boolean, private finishFailures = 0) {}
  acceptRequest(): Promise<AcceptOutcome> {
    return Promise.reject(new Error("acceptRequest is not part of an import run"));
  }
  startManualRun(): Promise<string> {
    return Promise.reject(new Error("startManualRun is not part of an import run"));
  }
  startRun(runId: string): Promise<boolean> {
    this.startCalls.push(runId);
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
}

function setup(started: boolean, finishFailures = 0) {
  const store = new FakeRunStore(started, finishFailures);
  const log = createMemoryLogger();
  return { store, log, run: createImportRunner({ store, log }) };
}

Deno.test("a run that is not in `accepted` is left alone: no finishRun", async () => {
  const { store, run } = setup(false);
  await run({ runId: RUN_ID, userId: USER_ID });
  assert.deepEqual(store.startCalls, [RUN_ID]);
  assert.deepEqual(store.finishCalls, []);
});

Deno.test("without a mailbox the run ends as skipped with the reason, never succeeded", async () => {
  const { store, run, log } = setup(true);
  await run({ runId: RUN_ID, userId: USER_ID });
  assert.deepEqual(store.startCalls, [RUN_ID]);
  assert.equal(store.finishCalls.length, 1);
  const [finish] = store.finishCalls;
  assert.equal(finish.runId, RUN_ID);
  assert.equal(finish.status, "skipped");
  assert.notEqual(finish.status, "succeeded");
  assert.equal(finish.options?.error, "no mailbox configured");
  assert.deepEqual(finish.options?.details, { fetched: 0, inserted: 0, duplicates: 0 });
  assert.ok(log.lines.some((line) => line.includes("no mailbox configured")));
});

Deno.test("when recording the outcome fails, the run is marked failed and the runner does not throw", async () => {
  const { store, run, log } = setup(true, 1);
  await run({ runId: RUN_ID, userId: USER_ID });
  assert.deepEqual(store.finishCalls.map((call) => call.status), ["skipped", "failed"]);
  assert.equal(store.finishCalls[1].runId, RUN_ID);
  assert.ok(log.lines.some((line) => JSON.parse(line).level === "error"));
});

Deno.test("when even marking the run failed fails, the runner still does not throw", async () => {
  const { store, run } = setup(true, 2);
  await run({ runId: RUN_ID, userId: USER_ID });
  assert.deepEqual(store.finishCalls.map((call) => call.status), ["skipped", "failed"]);
});
