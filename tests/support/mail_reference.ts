/**
 * The differential check of the importer's parse against a reference parser, npm
 * `mailparser` (the parser behind Nodemailer), on the real-world corpus in
 * tests/fixtures/mail_corpus/ (see its SOURCES.md). Tests only: no function imports
 * this module or mailparser.
 *
 * Both sides are brought to what a user sees in the stored row: the importer's
 * `cleanText` for header fields (one line, no control characters), whitespace runs as
 * one space in the text, the importer's date range and body cap. What is left are
 * real disagreements; known_differences.json lists each one the importer keeps, with
 * its reason.
 */
import { Buffer } from "node:buffer";
import { simpleParser } from "mailparser";
import {
  cleanText,
  DEFAULT_MAX_BODY_CHARS,
  type EmailAddress,
} from "../../functions-shared/import_emails/message_parser.ts";

const startedAt = Date.now() - 10 * 60_000;
export const corpusDir = new URL("../fixtures/mail_corpus/", import.meta.url);
export const FIELDS = ["subject", "from", "recipients", "date", "text"] as const;
export type Field = typeof FIELDS[number];
export type Fields = Record<Field, string>;

/** Every message of the corpus, by file name, in name order. */
export function corpusMessages(): { name: string; source: Uint8Array }[] {
  return [...Deno.readDirSync(corpusDir)]
    .filter((entry) => entry.isFile && entry.name.endsWith(".eml"))
    .map((entry) => entry.name)
    .sort()
    .map((name) => ({ name, source: Deno.readFileSync(new URL(name, corpusDir)) }));
}

export interface KnownDifferences {
  /** Why, and the RFC rule behind it, by a short key. */
  reasons: Record<string, string>;
  /** `{ "<file>": { "<field>": "<reason key>" } }`: the disagreements the importer keeps. */
  messages: Record<string, Partial<Record<Field, string>>>;
}

export function knownDifferences(): KnownDifferences {
  return JSON.parse(Deno.readTextFileSync(new URL("known_differences.json", corpusDir)));
}

/** The text as a user reads it: whitespace runs are one space. */
export function normalText(text: string | null | undefined): string {
  return (text ?? "").replace(/\s+/g, " ").trim();
}

function address(entry: EmailAddress | null): string {
  return entry ? `${entry.name ?? ""} <${entry.address ?? ""}>` : "";
}

/** The compared fields of a row the importer stores (or parseMessage returns). */
export function importerFields(row: {
  subject: string | null;
  from_address: EmailAddress | null;
  to_addresses: EmailAddress[];
  cc_addresses: EmailAddress[];
  sent_at: string | Date | null;
  body_text: string | null;
}): Fields {
  return {
    subject: row.subject ?? "",
    from: address(row.from_address),
    recipients: [...row.to_addresses, ...row.cc_addresses].map(address).join(", "),
    date: row.sent_at === null ? "" : new Date(row.sent_at).toISOString(),
    text: normalText(row.body_text),
  };
}

interface ReferenceAddress {
  name?: string;
  address?: string;
  group?: ReferenceAddress[];
}
interface ReferenceAddressObject {
  value: ReferenceAddress[];
}
interface ReferenceMail {
  subject?: string;
  from?: ReferenceAddressObject;
  to?: ReferenceAddressObject | ReferenceAddressObject[];
  cc?: ReferenceAddressObject | ReferenceAddressObject[];
  date?: Date;
  text?: string;
  headers: Map<string, unknown>;
}

function referenceAddresses(
  field: ReferenceAddressObject | ReferenceAddressObject[] | undefined,
): EmailAddress[] {
  const objects = field === undefined ? [] : Array.isArray(field) ? field : [field];
  return objects.flatMap((object) => object.value)
    .flatMap((entry) => entry.group ?? [entry])
    .map((entry) => ({
      name: cleanText(entry.name, 300),
      address: cleanText(entry.address, 320),
    }));
}

/** The same fields as mailparser reads them from the same bytes. */
export async function referenceFields(source: Uint8Array): Promise<Fields> {
  const mail = await simpleParser(Buffer.from(source), { skipImageLinks: true }) as ReferenceMail;
  // mailparser dates a message without a valid Date header "now" (its header map too);
  // the importer stores none. The corpus is older than this run.
  const header = mail.headers.get("date");
  const date = header instanceof Date && !Number.isNaN(header.getTime()) &&
      header.getTime() < startedAt
    ? header
    : null;
  const year = date?.getUTCFullYear() ?? 0;
  return {
    subject: cleanText(mail.subject) ?? "",
    from: address(referenceAddresses(mail.from)[0] ?? null),
    recipients: [...referenceAddresses(mail.to), ...referenceAddresses(mail.cc)].map(address)
      .join(", "),
    date: date && year >= 1970 && year <= 2200 ? date.toISOString() : "",
    // The importer keeps the first 256 KiB of a text and drops NUL (documented limits).
    text: normalText(mail.text?.replaceAll("\u0000", "").slice(0, DEFAULT_MAX_BODY_CHARS)),
  };
}
