import assert from "node:assert/strict";
import { withJoinedBlob } from "./joined_blob.ts";

Deno.test("inside withJoinedBlob, Blob joins parts to the same bytes and stays a Blob", async () => {
  const NativeBlob = globalThis.Blob;
  const parts = ["héllo", new TextEncoder().encode(" wörld"), "\n"];
  const expected = new Uint8Array(await new NativeBlob(parts).arrayBuffer());
  const inside = await withJoinedBlob(async () => {
    const blob = new Blob(parts, { type: "text/plain" });
    assert.ok(blob instanceof NativeBlob);
    assert.equal(blob.type, "text/plain");
    return new Uint8Array(await blob.arrayBuffer());
  });
  assert.deepEqual(inside, expected);
  assert.equal(globalThis.Blob, NativeBlob, "restored afterwards");
});

Deno.test("overlapping uses restore the native Blob only when the last one ends, even on errors", async () => {
  const NativeBlob = globalThis.Blob;
  let release!: () => void;
  const first = withJoinedBlob(() => new Promise<void>((resolve) => (release = resolve)));
  await assert.rejects(withJoinedBlob(() => Promise.reject(new Error("boom"))), /boom/);
  assert.notEqual(globalThis.Blob, NativeBlob, "still swapped while the first runs");
  release();
  await first;
  assert.equal(globalThis.Blob, NativeBlob);
});
