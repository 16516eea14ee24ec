/**
 * Turns one (possibly truncated) RFC 822 source into the row we store.
 *
 * Parser: postal-mime, not mailparser. postal-mime is plain ESM built on Web APIs
 * (TextDecoder for charsets, no Node streams or iconv), made for Workers-style
 * runtimes like the edge runtime, small, and it parses a truncated source as far as
 * it goes. mailparser needs Node streams and iconv-lite and is several times larger.
 * For well-formed mail, postal-mime reads only the header block and the text body
 * comes from mime_text.ts, which gives exactly postal-mime's text ~10x cheaper.
 *
 * Everything here is hostile input: strings are made safe for Postgres text and
 * jsonb (no NUL, no lone surrogates), sizes are capped, and a parse failure still
 * yields a row (with parse_error) so one bad message never aborts a batch.
 */
import { createHash } from "node:crypto";
import { decodeHTML } from "entities";
import PostalMime from "postal-mime";
import { parseAddresses } from "./addresses.ts";
import { decodeWords } from "./encoded_words.ts";
import { safeLine, safeText } from "./safe_text.ts";
import { withJoinedBlob } from "./joined_blob.ts";
import { plainTextOf } from "./mime_text.ts";

export interface EmailAddress {
  name: string | null;
  address: string | null;
}

export interface ParsedEmail {
  message_key: string;
  message_id: string | null;
  in_reply_to: string | null;
  references: string[] | null;
  from_address: EmailAddress | null;
  to_addresses: EmailAddress[];
  cc_addresses: EmailAddress[];
  subject: string | null;
  sent_at: string | null;
  body_text: string | null;
  body_truncated: boolean;
  snippet: string | null;
  parse_error: string | null;
}

export const DEFAULT_MAX_BODY_CHARS = 256 * 1024;
const SNIPPET_CHARS = 200;
const MAX_HEADER_CHARS = 2000;
// Enough raw field for MAX_HEADER_CHARS decoded characters (a Q-encoded CJK character
// takes 9): a longer subject is not decoded past it.
const MAX_RAW_SUBJECT_CHARS = 32 * 1024;

/**
 * A header field (or other one-line text) safe for Postgres text and jsonb and for
 * whoever prints it: no NUL, no control character, well-formed UTF-16, bounded.
 */
export function cleanText(value: unknown, maxChars = MAX_HEADER_CHARS): string | null {
  if (typeof value !== "string") return null;
  const cleaned = safeLine(value, maxChars);
  return cleaned === "" ? null : cleaned;
}

/** The raw header block: bytes up to the first empty line. */
function headerBlock(source: Uint8Array): Uint8Array {
  for (let i = 0; i + 1 < source.length; i++) {
    if (source[i] === 0x0a && source[i + 1] === 0x0a) return source.subarray(0, i);
    if (source[i] === 0x0a && source[i + 1] === 0x0d && source[i + 2] === 0x0a) {
      return source.subarray(0, i);
    }
  }
  return source;
}

/**
 * Identity across UIDVALIDITY resets: the Message-ID when there is one, else a hash
 * of the raw header block (stable for the same stored message).
 */
export function messageKey(messageId: string | null, source: Uint8Array): string {
  if (messageId) return `mid:${messageId}`;
  return `sha256:${createHash("sha256").update(headerBlock(source)).digest("hex")}`;
}

function normaliseMessageId(value: unknown): string | null {
  const text = cleanText(value, 998);
  if (!text) return null;
  const trimmed = text.trim().replace(/^<|>$/g, "").trim();
  return trimmed === "" ? null : trimmed;
}

/** The raw values of the fields we decode ourselves: the first Subject and From, every To and Cc. */
function fieldValues(headers: { key: string; value: string }[]) {
  const fields = {
    subject: null as string | null,
    from: "",
    to: [] as string[],
    cc: [] as string[],
  };
  for (const { key, value } of headers) {
    if (key === "subject") fields.subject ??= value;
    else if (key === "from") fields.from ||= value;
    else if (key === "to") fields.to.push(value);
    else if (key === "cc") fields.cc.push(value);
  }
  return fields;
}

/** The addresses of an address field (To and Cc may come more than once), bounded. */
function addresses(values: string | string[], limit = 100): EmailAddress[] {
  const value = typeof values === "string" ? values : values.join(", ");
  if (value === "") return [];
  return parseAddresses(value, limit).map((entry) => ({
    name: cleanText(entry.name, 300),
    address: cleanText(entry.address, 320),
  }));
}

function validDate(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const date = new Date(value);
  const year = date.getUTCFullYear();
  return Number.isNaN(date.getTime()) || year < 1970 || year > 2200 ? null : date.toISOString();
}

function referencesFrom(value: unknown): string[] | null {
  const ids = (cleanText(value, 20_000)?.match(/<[^>]+>|[^\s<>]+/g) ?? [])
    .slice(0, 200).map((id) => id.replace(/^<|>$/g, ""));
  return ids.length > 0 ? ids : null;
}

/**
 * A readable text from HTML when a message has no text part. Every character
 * reference the HTML standard defines, named and numeric, is decoded (npm `entities`,
 * the decoder of the htmlparser2/cheerio family), after the tags are gone so that
 * `&lt;b&gt;` stays text.
 */
function htmlToText(html: string): string {
  const text = html
    .replace(/<(script|style|head)[^>]*>[\s\S]*?<\/\1>/gi, " ")
    .replace(/<br\s*\/?>|<\/(p|div|li|tr|h[1-6])>/gi, "\n")
    .replace(/<[^>]+>/g, " ");
  return decodeHTML(text)
    .replace(/[ \t\u00a0]+/g, " ")
    .replace(/\n\s*\n+/g, "\n\n")
    .trim();
}

export async function parseMessage(
  source: Uint8Array,
  options: { maxBodyChars?: number } = {},
): Promise<ParsedEmail> {
  const maxBodyChars = options.maxBodyChars ?? DEFAULT_MAX_BODY_CHARS;
  try {
    // Well-formed mail: the text body from mime_text.ts, postal-mime for the header
    // block only. Anything else: postal-mime for the whole message.
    const fast = plainTextOf(source);
    const email = await withJoinedBlob(() =>
      PostalMime.parse(fast ? source.subarray(0, fast.bodyStart) : source, {
        attachmentEncoding: "arraybuffer",
      })
    );
    const messageId = normaliseMessageId(email.messageId);
    const fullText = fast ? fast.text : email.text ?? (email.html ? htmlToText(email.html) : null);
    const text = fullText === null ? null : fullText.replaceAll("\u0000", "").toWellFormed();
    const bodyText = text === null ? null : text.slice(0, maxBodyChars);
    const fields = fieldValues(email.headers);
    const from = addresses(fields.from, 1)[0] ?? null;
    return {
      message_key: messageKey(messageId, source),
      message_id: messageId,
      in_reply_to: normaliseMessageId(email.inReplyTo),
      references: referencesFrom(email.references),
      from_address: from,
      to_addresses: addresses(fields.to),
      cc_addresses: addresses(fields.cc),
      // Decoded here, not by postal-mime: adjacent encoded words are joined (encoded_words.ts).
      subject: cleanText(
        fields.subject === null
          ? null
          : decodeWords(fields.subject.slice(0, MAX_RAW_SUBJECT_CHARS)),
      ),
      sent_at: validDate(email.date),
      // The body keeps its lines and tabs: it is the mail's content, shown as text.
      body_text: bodyText ? safeText(bodyText, maxBodyChars) || null : null,
      body_truncated: text !== null && text.length > maxBodyChars,
      // Only a prefix can reach the snippet: don't rewrite a 256 KiB body for 200 characters.
      snippet: cleanText(
        text?.slice(0, SNIPPET_CHARS * 8).replace(/\s+/g, " ").trim(),
        SNIPPET_CHARS,
      ),
      parse_error: null,
    };
  } catch (error) {
    return {
      message_key: messageKey(null, source),
      message_id: null,
      in_reply_to: null,
      references: null,
      from_address: null,
      to_addresses: [],
      cc_addresses: [],
      subject: null,
      sent_at: null,
      body_text: null,
      body_truncated: false,
      snippet: null,
      parse_error: cleanText(`Cannot parse message: ${(error as Error).message}`, 300),
    };
  }
}
