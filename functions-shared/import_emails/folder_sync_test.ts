import assert from "node:assert/strict";
import { type FolderSyncOptions, syncFolder } from "./folder_sync.ts";
import { runChunkBudget } from "./instance_admission.ts";
import { createIsolateBudget } from "./isolate_budget.ts";
import type { ImapSession } from "./imap_session.ts";
import {
  type FakeFolder,
  FakeMailStore,
  fakeSession,
  mail,
  mailbox,
} from "../../tests/support/import_fakes.ts";

const MAILBOX = "11111111-1111-4111-8111-111111111111";

function setup(
  folder: FakeFolder,
  options: Partial<Omit<FolderSyncOptions, "session" | "store">> & {
    session?: (honest: ImapSession) => ImapSession;
    /** The run's messages (its chunk budget in an instance with room for 1,000). */
    maxMessages?: number;
  } = {},
) {
  const fake = fakeSession({ INBOX: folder });
  const store = new FakeMailStore();
  let clock = 1_000;
  const sync = () =>
    syncFolder({
      session: options.session ? options.session(fake.session) : fake.session,
      store,
      mailbox: mailbox(MAILBOX),
      folder: "INBOX",
      state: options.state,
      limits: options.limits ?? { maxBodyChars: 1000, chunkSize: 2 },
      budget: options.budget ?? runChunkBudget(
        createIsolateBudget({ wallClockSeconds: 150, maxConcurrentRuns: 2, maxMessages: 1000 }),
        { maxMessages: options.maxMessages ?? 100, enteredAt: 0, now: () => 0 },
      ),
      deadline: options.deadline ?? Infinity,
      now: options.now ?? (() => clock++),
    });
  return { fake, store, sync };
}

const five = () => ({ uidValidity: 7, messages: [1, 2, 3, 4, 5].map(mail) });

Deno.test("syncFolder imports every new UID in chunks, each batch with the state covering it", async () => {
  const ctx = setup(five());
  const result = await ctx.sync();
  assert.deepEqual(result, {
    requested: 5,
    fetched: 5,
    inserted: 5,
    remapped: 0,
    duplicates: 0,
    bytes: result.bytes,
    reset: false,
    hasMore: false,
    unchanged: false,
  });
  assert.ok(result.bytes > 0);
  assert.deepEqual(ctx.store.batches.map((batch) => batch.records.map((r) => r.uid)), [
    [1, 2],
    [3, 4],
    [5],
  ]);
  assert.deepEqual(ctx.store.batches.map((batch) => batch.progress), [
    { uidValidity: 7, lastUid: 2, highestModseq: null, messageCount: null },
    { uidValidity: 7, lastUid: 4, highestModseq: null, messageCount: null },
    { uidValidity: 7, lastUid: 5, highestModseq: 7n, messageCount: 5 },
  ]);
  assert.deepEqual(ctx.fake.session.commands, { STATUS: 1, SEARCH: 1, FETCH: 3 });
});

Deno.test("syncFolder: nothing above the last UID with the same UIDVALIDITY -> STATUS only", async () => {
  const ctx = setup(five(), { state: { folder: "INBOX", uid_validity: 7, last_uid: 5 } });
  const result = await ctx.sync();
  assert.equal(result.unchanged, true);
  assert.equal(result.fetched, 0);
  assert.deepEqual(ctx.fake.session.commands, { STATUS: 1 });
  assert.deepEqual(ctx.store.callsOf("touchFolder"), [[MAILBOX, "INBOX", {
    uidValidity: 7,
    highestModseq: 7n,
    messageCount: 5,
  }]]);
});

Deno.test("syncFolder: only UIDs above the last imported one are fetched", async () => {
  const ctx = setup(five(), { state: { folder: "INBOX", uid_validity: 7, last_uid: 3 } });
  const result = await ctx.sync();
  assert.equal(result.fetched, 2);
  assert.deepEqual(ctx.store.batches.map((batch) => batch.records.map((r) => r.uid)), [[4, 5]]);
});

Deno.test("syncFolder: a new UIDVALIDITY resets the folder and imports from UID 1", async () => {
  const ctx = setup(five(), { state: { folder: "INBOX", uid_validity: 6, last_uid: 50 } });
  const result = await ctx.sync();
  assert.equal(result.reset, true);
  assert.equal(result.fetched, 5);
  assert.deepEqual(ctx.store.callsOf("resetFolder"), [[MAILBOX, "INBOX", 7]]);
});

Deno.test("syncFolder stops at its message allowance and says there is more; the caller's options are untouched", async () => {
  const ctx = setup(five(), { maxMessages: 3 });
  const result = await ctx.sync();
  assert.equal(result.requested, 3);
  assert.equal(result.fetched, 3);
  assert.equal(result.hasMore, true);
  assert.deepEqual(ctx.store.batches.map((batch) => batch.records.map((r) => r.uid)), [
    [1, 2],
    [3],
  ]);
  assert.equal(ctx.store.batches.at(-1)?.progress.highestModseq, null);
});

Deno.test("syncFolder starts no chunk after the deadline", async () => {
  let now = 0;
  const ctx = setup(five(), { deadline: 1, now: () => now++ });
  const result = await ctx.sync();
  assert.equal(result.requested, 2, "one chunk started before the deadline");
  assert.equal(result.hasMore, true);
  assert.equal(ctx.store.batches.length, 1);
});

Deno.test("syncFolder never throws: a failed chunk is returned with the counts committed before it", async () => {
  let fetches = 0;
  const ctx = setup(five(), {
    session: (honest) => ({
      ...honest,
      fetchChunk(folder, uids) {
        return ++fetches === 2
          ? Promise.reject(new Error("connection lost"))
          : honest.fetchChunk(folder, uids);
      },
    }),
  });
  const result = await ctx.sync();
  assert.match(String(result.error), /connection lost/);
  assert.equal(result.fetched, 2, "the first chunk was committed");
  assert.deepEqual(ctx.store.batches.map((batch) => batch.progress.lastUid), [2]);
});

Deno.test("syncFolder: a missing folder is an error result, nothing stored", async () => {
  const ctx = setup(five(), {
    session: (honest) => ({
      ...honest,
      status: () => Promise.reject(new Error('Folder "INBOX" does not exist on the server')),
    }),
  });
  const result = await ctx.sync();
  assert.match(String(result.error), /does not exist/);
  assert.equal(ctx.store.calls.length, 0);
});
