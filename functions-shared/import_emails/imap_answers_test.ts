import assert from "node:assert/strict";
import { checkedStatus, ChunkRows, uidsAbove } from "./imap_answers.ts";
import { ImapSessionError } from "./session_errors.ts";

Deno.test("STATUS: an invalid UIDVALIDITY fails, absurd counts become null", () => {
  assert.deepEqual(
    checkedStatus({ uidValidity: 7n, uidNext: 12, highestModseq: 99n, messages: 11 }),
    { uidValidity: 7, uidNext: 12, highestModseq: 99n, messages: 11 },
  );
  for (const uidValidity of [undefined, 0n, -1, 2 ** 32, 1.5, "7", NaN]) {
    assert.throws(() => checkedStatus({ uidValidity }), ImapSessionError, String(uidValidity));
  }
  assert.deepEqual(
    checkedStatus({ uidValidity: 7, uidNext: -4, highestModseq: -1n, messages: 1e300 }),
    { uidValidity: 7, uidNext: null, highestModseq: null, messages: null },
  );
  // A count the database column (integer) cannot hold would fail the whole batch.
  assert.equal(checkedStatus({ uidValidity: 7, messages: 2 ** 31 }).messages, null);
  assert.equal(checkedStatus({ uidValidity: 7, messages: 2 ** 31 - 1 }).messages, 2 ** 31 - 1);
});

Deno.test("SEARCH: only valid UIDs above the last one, each once, ascending", () => {
  assert.deepEqual(uidsAbove([9, 3, 3, 5, 0, -2, 2 ** 32, 1.5, "6", 4], 3), [4, 5, 9]);
  assert.deepEqual(uidsAbove(undefined, 0), []);
});

Deno.test("a chunk keeps one row per UID asked for, in UID order, each within the byte bound", () => {
  const rows = new ChunkRows([2, 1], 4);
  rows.add({ uid: 2, source: new Uint8Array(10), flags: new Set(["\\Seen", 7]), size: 10 });
  rows.add({ uid: 99, source: new Uint8Array(1) }); // not asked for
  rows.add({ uid: 2, source: new Uint8Array(1) }); // asked once, sent twice
  rows.add({ uid: 1, internalDate: "not a date", size: -5 });
  const kept = rows.rows();
  assert.deepEqual(kept.map((row) => row.uid), [1, 2]);
  assert.equal(kept[1].source.length, 4, "cut at the bound");
  assert.equal(kept[1].source.buffer.byteLength, 4, "a copy, not a view of the big buffer");
  assert.deepEqual(kept[1].flags, ["\\Seen"]);
  assert.equal(kept[0].internalDate, null);
  assert.equal(kept[0].size, null);
  assert.equal(kept[0].source.length, 0);
});

Deno.test("a chunk stops a server that floods it with rows not asked for", () => {
  const rows = new ChunkRows([1], 100);
  assert.throws(() => {
    for (let uid = 2; uid < 5000; uid++) rows.add({ uid });
  }, /not asked for/);
});
