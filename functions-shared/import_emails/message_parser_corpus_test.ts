/**
 * The importer's parse against a reference parser (npm mailparser) on real-world mail
 * that no one here wrote: tests/fixtures/mail_corpus/ (sources in its SOURCES.md).
 * Subject, sender, recipients, date and text must agree, or the difference must be
 * listed in known_differences.json with its reason; a new disagreement fails, and so
 * does a listed one that has gone (the list stays true).
 */
import assert from "node:assert/strict";
import {
  corpusMessages,
  FIELDS,
  importerFields,
  knownDifferences,
  referenceFields,
} from "../../tests/support/mail_reference.ts";
import { parseMessage } from "./message_parser.ts";

const messages = corpusMessages();
const known = knownDifferences();

Deno.test("the corpus holds several hundred real-world messages", () => {
  assert.ok(messages.length >= 370, `only ${messages.length} messages`);
});

Deno.test("every listed difference names a message of the corpus, a field and a known reason", () => {
  const names = new Set(messages.map((message) => message.name));
  for (const [name, fields] of Object.entries(known.messages)) {
    assert.ok(names.has(name), `"${name}" is not in the corpus`);
    for (const [field, reason] of Object.entries(fields)) {
      assert.ok((FIELDS as readonly string[]).includes(field), `"${name}": no field "${field}"`);
      assert.ok(reason in known.reasons, `"${name}" ${field}: no reason "${reason}"`);
    }
  }
});

Deno.test("subject, sender, recipients, date and text agree with mailparser, or the difference is listed", async () => {
  const unexpected: string[] = [];
  const gone: string[] = [];
  for (const { name, source } of messages) {
    const ours = importerFields(await parseMessage(source));
    const reference = await referenceFields(source);
    for (const field of FIELDS) {
      const listed = known.messages[name]?.[field] !== undefined;
      const agree = ours[field] === reference[field];
      if (!agree && !listed) {
        unexpected.push(
          `${name} ${field}:\n  importer:  ${JSON.stringify(ours[field].slice(0, 200))}\n` +
            `  reference: ${JSON.stringify(reference[field].slice(0, 200))}`,
        );
      }
      if (agree && listed) gone.push(`${name} ${field}`);
    }
  }
  assert.deepEqual(
    unexpected,
    [],
    "new disagreements with mailparser (fix, or list with a reason)",
  );
  assert.deepEqual(gone, [], "listed in known_differences.json but now agreeing: remove them");
});
