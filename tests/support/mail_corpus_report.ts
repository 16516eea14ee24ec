/**
 * Agreement of the importer's parse with the reference parser (mailparser), field by
 * field, over the real-world corpus; and every disagreement, for known_differences.json.
 *
 *   deno run --allow-read --allow-env tests/support/mail_corpus_report.ts [--details]
 *       [--parser <path of a message_parser.ts>]   (another version, e.g. an old checkout)
 */
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import {
  corpusMessages,
  FIELDS,
  type Fields,
  importerFields,
  knownDifferences,
  referenceFields,
} from "./mail_reference.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { details: { type: "boolean" }, parser: { type: "string" } },
});
const parser = values.parser
  ? await import(pathToFileURL(resolve(values.parser)).href)
  : await import("../../functions-shared/import_emails/message_parser.ts");

/** The two values from a little before where they first differ. */
function around(ours: string, reference: string) {
  let at = 0;
  while (at < ours.length && ours[at] === reference[at]) at++;
  const start = Math.max(0, at - 40);
  return { at, importer: ours.slice(start, at + 120), reference: reference.slice(start, at + 120) };
}

const messages = corpusMessages();
const known = knownDifferences().messages;
const agree = Object.fromEntries(FIELDS.map((field) => [field, 0]));
const details: Record<string, Record<string, { importer: string; reference: string }>> = {};
for (const { name, source } of messages) {
  const ours: Fields = importerFields(await parser.parseMessage(source));
  const reference = await referenceFields(source);
  for (const field of FIELDS) {
    if (ours[field] === reference[field]) agree[field]++;
    else {
      details[name] ??= {};
      details[name][field] = around(ours[field], reference[field]);
    }
  }
}
console.log(`${messages.length} messages; agreeing with mailparser, per field:`);
for (const field of FIELDS) console.log(`  ${field.padEnd(10)} ${agree[field]}/${messages.length}`);
const listed = Object.values(known).reduce((sum, fields) => sum + Object.keys(fields).length, 0);
console.log(`  listed in known_differences.json: ${listed}`);
if (values.details) console.log(JSON.stringify(details, null, 2));
