import assert from "node:assert/strict";
import type { EmailRecord } from "./mail_store.ts";
import { storeBatchQuery } from "./mail_store.ts";

function record(uid: number, body: string | null): EmailRecord {
  return {
    uid,
    message_key: `mid:m${uid}@example.test`,
    message_id: `m${uid}@example.test`,
    in_reply_to: null,
    references: null,
    from_address: null,
    to_addresses: [],
    cc_addresses: [],
    subject: `Subject ${uid}`,
    sent_at: null,
    body_text: body,
    body_truncated: false,
    snippet: null,
    parse_error: null,
    internal_date: null,
    flags: ["\\Seen"],
    size_bytes: 10,
    source_truncated: false,
    attachments: [],
  };
}

Deno.test("store_batch gets each body as its own text parameter and the rest as one JSON", () => {
  const query = storeBatchQuery({
    mailboxId: "11111111-1111-4111-8111-111111111111",
    folder: "INBOX",
    records: [record(1, 'body "one"\\'), record(2, null)],
    progress: { uidValidity: 9, lastUid: 2, highestModseq: 12345678901234567890n, messageCount: 2 },
  });
  assert.match(query.text, /array\[\$8::text, \$9::text\]::text\[\]\)$/);
  const [mailboxId, folder, uidValidity, json, lastUid, modseq, count, ...bodies] =
    query.parameters;
  assert.deepEqual([mailboxId, folder, uidValidity, lastUid, modseq, count], [
    "11111111-1111-4111-8111-111111111111",
    "INBOX",
    9,
    2,
    "12345678901234567890",
    2,
  ]);
  assert.deepEqual(bodies, ['body "one"\\', null], "bodies pass untouched, not JSON-escaped");
  const metadata = JSON.parse(json as string);
  assert.deepEqual(metadata.map((m: { uid: number }) => m.uid), [1, 2]);
  assert.ok(metadata.every((m: object) => !("body_text" in m)), "no body inside the JSON");
});

Deno.test("an empty batch still calls store_batch with an empty body array (the state moves on)", () => {
  const query = storeBatchQuery({
    mailboxId: "11111111-1111-4111-8111-111111111111",
    folder: "INBOX",
    records: [],
    progress: { uidValidity: 9, lastUid: 40, highestModseq: null, messageCount: null },
  });
  assert.match(query.text, /array\[\]::text\[\]\)$/);
  assert.equal(query.parameters.length, 7);
  assert.equal(query.parameters[5], null);
});
