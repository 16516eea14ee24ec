/**
 * Hostile and malformed mail through the real server: every message is imported as
 * far as possible, none aborts its batch, and nothing is fetched past the byte bound.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect, createUser } from "../support/local_stack.ts";
import { addMailbox, appendMessages, createImapUser, importOnce } from "../support/imap.ts";

const sql = connect();
const MiB = 1024 * 1024;
const crlf = (lines: string[]) => lines.join("\r\n");
const bytes = (...parts: (string | Uint8Array)[]) =>
  Buffer.concat(parts.map((part) => Buffer.from(part as never)));

const hostile: Record<string, Uint8Array> = {
  "no headers": bytes("\r\nA body and nothing else.\r\n"),
  "broken MIME": bytes(crlf([
    "Subject: broken mime",
    "Message-ID: <broken@test.example>",
    'Content-Type: multipart/mixed; boundary="never-closed"',
    "",
    "--never-closed",
    "Content-Type: text/plain",
    "",
    "first part, and the boundary never closes",
    "--never-clo",
  ])),
  "unknown charset": bytes(crlf([
    "Subject: =?x-unknown-foo?Q?caf=E9?=",
    "Message-ID: <charset@test.example>",
    "Content-Type: text/plain; charset=x-unknown-foo",
    "",
    "body in an unknown charset",
  ])),
  "raw 8-bit headers": bytes(
    "Subject: caf",
    new Uint8Array([0xe9, 0xff, 0xfe]),
    " au lait\r\nFrom: J",
    new Uint8Array([0xf6]),
    "rg <j@test.example>\r\nMessage-ID: <8bit@test.example>\r\n\r\nraw bytes\r\n",
  ),
  "NUL bytes": bytes(
    "Subject: nul\u0000here\r\nMessage-ID: <nul@test.example>\r\n\r\nbody\u0000with\u0000nuls\r\n",
  ),
  "20 MB attachment": bytes(crlf([
    "Subject: a 20 MB attachment",
    "Message-ID: <big-attachment@test.example>",
    'Content-Type: multipart/mixed; boundary="b1"',
    "",
    "--b1",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "See the attached file.",
    "--b1",
    'Content-Type: application/octet-stream; name="archive.bin"',
    'Content-Disposition: attachment; filename="archive.bin"',
    "Content-Transfer-Encoding: base64",
    "",
    Buffer.alloc(20 * MiB, 7).toString("base64").replace(/.{76}/g, "$&\r\n"),
    "--b1--",
    "",
  ])),
  "5 MB single part": bytes(crlf([
    "Subject: five megabytes of text",
    "Message-ID: <big-text@test.example>",
    "Content-Type: text/plain; charset=utf-8",
    "",
    "lorem ipsum ".repeat(Math.ceil(5 * MiB / 12)),
  ])),
};

Deno.test("hostile and malformed mail: all imported as far as possible, within the byte bound", async () => {
  const userId = await createUser(sql, "hostile");
  const imapUser = await createImapUser();
  const mailboxId = await addMailbox(sql, userId, imapUser);
  await appendMessages(imapUser, "INBOX", Object.values(hostile));

  const run = await importOnce(sql, userId, { maxMessageBytes: MiB });
  assert.equal(run.status, "succeeded", run.error);
  assert.equal(run.details.inserted, Object.keys(hostile).length, "every message has a row");
  const sizes = Object.values(hostile).map((source) => Math.min(source.length, MiB));
  assert.ok(
    run.details.bytes <= sizes.reduce((a, b) => a + b, 0),
    `${run.details.bytes} bytes fetched`,
  );

  const rows = await sql`
    select uid, subject, message_id, body_text, body_truncated, source_truncated, size_bytes, attachments, parse_error
      from public.emails where mailbox_id = ${mailboxId} order by uid`;
  const byName = Object.fromEntries(Object.keys(hostile).map((name, i) => [name, rows[i]]));

  assert.match(byName["no headers"].body_text, /A body and nothing else/);
  assert.match(byName["broken MIME"].body_text ?? "", /first part/);
  assert.match(byName["unknown charset"].body_text ?? "", /unknown charset/);
  assert.match(byName["raw 8-bit headers"].subject, /caf.*au lait/);
  assert.equal(byName["NUL bytes"].subject.includes("\u0000"), false);
  assert.equal(byName["NUL bytes"].body_text.includes("\u0000"), false);

  const attachment = byName["20 MB attachment"];
  assert.equal(attachment.source_truncated, true);
  assert.ok(Number(attachment.size_bytes) > 20 * MiB);
  assert.match(attachment.body_text, /See the attached file/);
  assert.equal(attachment.attachments.length, 1);
  assert.equal(attachment.attachments[0].filename, "archive.bin");
  assert.ok(
    attachment.attachments[0].size > 20 * MiB,
    "size from BODYSTRUCTURE, not from what was fetched",
  );

  const text = byName["5 MB single part"];
  assert.equal(text.source_truncated, true);
  assert.equal(text.body_truncated, true);
  assert.equal(text.body_text.length, 256 * 1024);
  assert.equal(text.subject, "five megabytes of text");
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
