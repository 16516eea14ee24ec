/**
 * The real-world corpus (tests/fixtures/mail_corpus/) through the real path: APPEND to
 * the stack's Dovecot, one import by the production runner, the rows as stored. Each
 * row's subject, sender, recipients, date and text must agree with the reference
 * parser (mailparser) on the same message, or the difference must be one
 * known_differences.json lists for it (the unit test checks the list itself).
 *
 * The whole corpus is appended and compared (Dovecot takes a NUL byte, and serves it
 * as 0x80, so the reference reads those bytes too).
 */
import assert from "node:assert/strict";
import { parseMessage } from "../../functions-shared/import_emails/message_parser.ts";
import { addMailbox, createImapUser, importOnce, withImapClient } from "../support/imap.ts";
import { connect, createUser } from "../support/local_stack.ts";
import {
  corpusMessages,
  FIELDS,
  importerFields,
  knownDifferences,
  referenceFields,
} from "../support/mail_reference.ts";

const sql = connect();

Deno.test("the corpus through Dovecot and the import: stored rows agree with mailparser, or the difference is listed", async () => {
  const messages = corpusMessages();
  // One row per message key (Message-ID, else a hash of the header block) and folder,
  // by design, and fixtures of one library often share one: the n-th message with a
  // key goes to folder "Copy n", so that every message gets its own row.
  const folderOf = new Map<string, string>();
  const seen = new Map<string, number>();
  for (const message of messages) {
    const { message_key } = await parseMessage(message.source);
    const copy = (seen.get(message_key) ?? 0) + 1;
    seen.set(message_key, copy);
    folderOf.set(message.name, copy === 1 ? "INBOX" : `Copy ${copy}`);
  }
  const folders = [...new Set(folderOf.values())];
  const userId = await createUser(sql, "corpus");
  const imapUser = await createImapUser();
  const mailboxId = await addMailbox(sql, userId, imapUser, { folders });

  // Appended one by one: the UID Dovecot answers says which row is which message.
  const byRow = new Map<string, (typeof messages)[number]>();
  const refused: string[] = [];
  await withImapClient(imapUser, async (client) => {
    for (const folder of folders) if (folder !== "INBOX") await client.mailboxCreate(folder);
    for (const message of messages) {
      const folder = folderOf.get(message.name)!;
      const appended = await client.append(folder, message.source as never).catch(() => false);
      if (appended && typeof appended === "object" && appended.uid) {
        byRow.set(`${folder}/${appended.uid}`, message);
      } else refused.push(message.name);
    }
  });
  assert.deepEqual(refused, [], "Dovecot refused messages");

  const run = await importOnce(sql, userId, { maxMessages: 1000 });
  assert.equal(run.status, "succeeded", run.error);
  const rows = await sql`
    select folder, uid, subject, from_address, to_addresses, cc_addresses, sent_at, body_text
    from public.emails where mailbox_id = ${mailboxId}`;
  assert.equal(rows.length, byRow.size, "every message Dovecot stored is one row");

  const known = knownDifferences().messages;
  const unexpected: string[] = [];
  for (const row of rows) {
    const message = byRow.get(`${row.folder}/${row.uid}`)!;
    const stored = importerFields(row as never);
    // Dovecot serves a NUL byte as 0x80 (an IMAP literal may not hold NUL, RFC 3501 §4.3).
    const served = message.source.map((byte) => byte === 0 ? 0x80 : byte);
    const reference = await referenceFields(served);
    for (const field of FIELDS) {
      if (stored[field] !== reference[field] && known[message.name]?.[field] === undefined) {
        unexpected.push(
          `${message.name} ${field}:\n  stored:    ${JSON.stringify(stored[field].slice(0, 200))}` +
            `\n  reference: ${JSON.stringify(reference[field].slice(0, 200))}`,
        );
      }
    }
  }
  assert.deepEqual(unexpected, [], "stored rows disagree with mailparser where nothing is listed");
  await sql`delete from auth.users where id = ${userId}`;
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
