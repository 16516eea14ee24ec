/**
 * The fast path of message_parser.ts: the plain-text body of well-formed MIME,
 * without decoding anything else.
 *
 * Why: postal-mime decodes every part (HTML, base64 attachments) line by line in
 * JavaScript, ~0.6 ms for a 40 KB message, while we keep only the text body (the
 * attachment list comes from IMAP BODYSTRUCTURE). Here the part tree is cut at its
 * boundary lines with a native byte search and only the text/plain leaves are
 * decoded, ~10x less CPU (BENCHMARKS.md).
 *
 * The contract: when this returns a result it is exactly what postal-mime would have
 * put in `email.text` (mime_text_test.ts checks that against postal-mime itself, on
 * every shape it answers for and on the benchmark's mail). Anything it is not sure about returns `undefined` and the caller
 * falls back to postal-mime: multiparts without a boundary or never closed (unless
 * the source simply ends, as a message cut at the byte bound does), nested or
 * inline messages, multipart/digest and report, format=flowed, RFC 2231 or commented
 * parameters, charsets that are not ASCII-compatible, base64 that is not clean, HTML
 * without a text alternative, deep nesting, huge header blocks. So hostile mail always
 * meets the full parser, and the common case never does.
 *
 * postal-mime's rules mirrored here: a line ends at LF and loses its trailing CRs; a
 * delimiter is `--boundary` (then `--` for the last one) followed only by spaces or
 * tabs; every body line is emitted followed by "\n"; the first Content-* header of a
 * kind wins; a leaf is inline text when it is text/plain or text/html and not
 * `attachment`; text parts under a multipart/alternative are grouped under it; the
 * groups are joined with "\n".
 */
import { Buffer } from "node:buffer";
import { charsetLabel, decodeCharset, decoderFor } from "./charsets.ts";
import { hexDigitValue } from "./hex_digit.ts";

const LF = 0x0a;
const CR = 0x0d;
const MAX_DEPTH = 8;
const MAX_HEADER_BYTES = 64 * 1024;

export interface PlainText {
  /** Offset of the top-level body: `source.subarray(0, bodyStart)` is the header block. */
  bodyStart: number;
  /** The text body as postal-mime would give it; null when there is no text part at all. */
  text: string | null;
}

interface ContentHeaders {
  type: string;
  params: Map<string, string>;
  encoding: string;
  disposition: string;
}

/** Thrown inside the walk: this message is for postal-mime. */
class NotHandled extends Error {}
const notHandled = (): never => {
  throw new NotHandled();
};

const isWsp = (c: number) => c === 0x20 || c === 0x09;
const trimWsp = (text: string) => text.replace(/^[ \t]+|[ \t]+$/g, "");

/** End of the line content starting at `start` (trailing CRs excluded), and the next line. */
function lineAt(
  source: Uint8Array,
  start: number,
  end: number,
): { contentEnd: number; next: number } {
  const lf = source.indexOf(LF, start);
  const lineEnd = lf === -1 || lf >= end ? end : lf;
  let contentEnd = lineEnd;
  while (contentEnd > start && source[contentEnd - 1] === CR) contentEnd--;
  return { contentEnd, next: lineEnd === end ? end : lineEnd + 1 };
}

const headerDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** `type/subtype; key=value; key="quoted"`; anything unusual is not handled. */
function structured(value: string): { value: string; params: Map<string, string> } {
  if (/[()\\]/.test(value)) notHandled();
  const [head, ...rest] = value.split(";");
  if (head.includes('"')) notHandled();
  const params = new Map<string, string>();
  for (const piece of rest) {
    const equals = piece.indexOf("=");
    const key = trimWsp(equals === -1 ? piece : piece.slice(0, equals)).toLowerCase();
    if (key.includes("*") || key.includes('"')) notHandled();
    let paramValue = equals === -1 ? "" : trimWsp(piece.slice(equals + 1));
    if (paramValue.startsWith('"')) {
      const close = paramValue.indexOf('"', 1);
      if (close === -1 || trimWsp(paramValue.slice(close + 1)) !== "") notHandled();
      paramValue = paramValue.slice(1, close);
    } else if (paramValue.includes('"')) {
      notHandled();
    }
    if (key && !params.has(key)) params.set(key, paramValue);
  }
  return { value: trimWsp(head).toLowerCase(), params };
}

/** The part's header block [start, end): its Content-* headers and where its body starts. */
function readHeaders(source: Uint8Array, start: number, end: number, defaultType: string) {
  const lines: string[] = [];
  let position = start;
  let bodyStart = -1;
  while (position < end) {
    const { contentEnd, next } = lineAt(source, position, end);
    if (contentEnd === position) {
      bodyStart = next;
      break;
    }
    lines.push(headerDecoder.decode(source.subarray(position, contentEnd)));
    position = next;
    if (position - start > MAX_HEADER_BYTES) notHandled();
  }
  if (bodyStart === -1) notHandled(); // no empty line: no body to speak of

  const fields = new Map<string, string>();
  const take = (folded: string[]) => {
    const unfolded = folded.join("");
    const colon = unfolded.indexOf(":");
    if (colon === -1) return;
    const key = trimWsp(unfolded.slice(0, colon)).toLowerCase();
    if (!fields.has(key)) {
      fields.set(key, trimWsp(unfolded.slice(colon + 1).replace(/[\r\n]+/g, " ")));
    }
  };
  let folded: string[] = [];
  for (const line of lines) {
    if (folded.length && isWsp(line.charCodeAt(0))) folded.push(line);
    else {
      if (folded.length) take(folded);
      folded = [line];
    }
  }
  if (folded.length) take(folded);

  const type = structured(fields.get("content-type") ?? defaultType);
  const encodingHeader = fields.get("content-transfer-encoding") ?? "";
  if (encodingHeader.includes("(")) notHandled();
  const headers: ContentHeaders = {
    type: type.value,
    params: type.params,
    encoding: (encodingHeader.toLowerCase().match(/[\w-]+/) ?? [""])[0],
    disposition: structured(fields.get("content-disposition") ?? "").value,
  };
  return { headers, bodyStart };
}

const encoder = new TextEncoder();
const DASH = 0x2d;

/** Whether `marker` is at `at` in `source`, before `end`. */
function bytesAt(source: Uint8Array, at: number, end: number, marker: Uint8Array): boolean {
  if (at + marker.length > end) return false;
  for (let i = 0; i < marker.length; i++) if (source[at + i] !== marker[i]) return false;
  return true;
}

/** The parts that the delimiter lines of `boundary` cut [start, end) into. */
function splitParts(source: Uint8Array, start: number, end: number, boundary: string) {
  const marker = encoder.encode(`--${boundary}`);
  const parts: { start: number; end: number }[] = [];
  let partStart = -1;
  // A delimiter line starts with "--": jump from dash to dash (native indexOf; a
  // text has a few hundred, base64 none) rather than decoding or walking every line.
  for (
    let at = source.indexOf(DASH, start);
    at !== -1 && at < end;
    at = source.indexOf(DASH, at + 1)
  ) {
    if (at !== start && source[at - 1] !== LF) continue;
    if (!bytesAt(source, at, end, marker)) continue;
    const { contentEnd, next } = lineAt(source, at, end);
    let tail = at + marker.length;
    if (tail > contentEnd) continue;
    const closing = contentEnd - tail >= 2 && source[tail] === 0x2d && source[tail + 1] === 0x2d;
    if (closing) tail += 2;
    let onlySpace = true;
    for (let i = tail; i < contentEnd; i++) if (!isWsp(source[i])) onlySpace = false;
    if (!onlySpace) continue;
    if (partStart !== -1) parts.push({ start: partStart, end: at });
    if (closing) return parts;
    partStart = next;
  }
  // Never closed. At the end of the source (a message cut at the importer's byte
  // bound), postal-mime ends the open parts there: so do we. Anywhere else it is
  // malformed.
  if (end !== source.length || partStart === -1) return notHandled();
  parts.push({ start: partStart, end });
  return parts;
}

/**
 * The text of a body in its declared charset, by charsets.ts's rule (postal-mime's
 * decoder, except that a `us-ascii` or unknown label over valid UTF-8 reads as UTF-8).
 * An unknown label over other bytes is postal-mime's (it has aliases and fallbacks).
 */
function bodyText(bytes: Uint8Array, charset: string | undefined): string {
  const label = charsetLabel(charset);
  const encoding = decoderFor(label)?.encoding;
  // The line handling needs CR and LF to be single bytes with no state around them,
  // as postal-mime strips CRs before it decodes.
  if (encoding?.startsWith("utf-16") || encoding === "iso-2022-jp") notHandled();
  return decodeCharset(bytes, label) ?? notHandled();
}

/** Quoted-printable, line by line as postal-mime does: `=XX` decoded, a final `=` joins lines. */
function decodeQuotedPrintable(source: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start + 1);
  let length = 0;
  for (let position = start; position < end;) {
    const { contentEnd, next } = lineAt(source, position, end);
    const softBreak = contentEnd > position && source[contentEnd - 1] === 0x3d;
    const last = softBreak ? contentEnd - 1 : contentEnd;
    for (let i = position; i < last; i++) {
      const c = source[i];
      if (c === 0x3d && i + 2 < last) {
        const high = hexDigitValue(source[i + 1]);
        const low = hexDigitValue(source[i + 2]);
        if (high >= 0 && low >= 0) {
          out[length++] = (high << 4) | low;
          i += 2;
          continue;
        }
      }
      out[length++] = c;
    }
    if (!softBreak) out[length++] = LF;
    position = next;
  }
  return out.subarray(0, length);
}

/** Clean base64 only (what mailers write); anything else is postal-mime's. */
function decodeBase64(source: Uint8Array, start: number, end: number): Uint8Array {
  const text = Buffer.from(source.buffer, source.byteOffset + start, end - start).toString("latin1")
    .replace(/[\r\n]+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) notHandled();
  return Buffer.from(text, "base64");
}

/** The text of one text/plain leaf, as postal-mime's getTextContent gives it. */
function leafText(source: Uint8Array, start: number, end: number, headers: ContentHeaders): string {
  if (/^flowed$/i.test(headers.params.get("format") ?? "")) notHandled();
  const charset = headers.params.get("charset");
  if (/base64/.test(headers.encoding)) return bodyText(decodeBase64(source, start, end), charset);
  if (/quoted-printable/.test(headers.encoding)) {
    return bodyText(decodeQuotedPrintable(source, start, end), charset);
  }
  // Every line, without its trailing CRs, followed by "\n".
  if (start === end) return "";
  let text = bodyText(source.subarray(start, end), charset).replaceAll("\r\n", "\n");
  if (text.includes("\r\n")) text = text.replace(/\r+\n/g, "\n"); // CR CR LF: rare
  return text.endsWith("\n") ? text : `${text.replace(/\r+$/, "")}\n`;
}

interface TextGroup {
  plain: string[];
  html: boolean;
}

/** Walks one part: text leaves go into `groups`, keyed by their selector (see postal-mime). */
function collect(
  source: Uint8Array,
  part: { start: number; end: number },
  context: { depth: number; defaultType: string; alternative: object | null; boundaries: string[] },
  groups: Map<object, TextGroup>,
): number {
  const { headers, bodyStart } = readHeaders(source, part.start, part.end, context.defaultType);
  const multipart = headers.type.startsWith("multipart/") ? headers.type.slice(10) : null;
  if (multipart !== null) {
    const boundary = headers.params.get("boundary");
    if (!boundary || context.depth >= MAX_DEPTH || context.boundaries.includes(boundary)) {
      notHandled();
    }
    if (multipart === "digest" || multipart === "report") notHandled();
    const node = {};
    for (const child of splitParts(source, bodyStart, part.end, boundary!)) {
      collect(source, child, {
        depth: context.depth + 1,
        defaultType: "text/plain",
        alternative: multipart === "alternative" ? node : context.alternative,
        boundaries: [...context.boundaries, boundary!],
      }, groups);
    }
    return bodyStart;
  }
  if (headers.type.startsWith("message/")) notHandled();
  const inlineText = headers.disposition !== "attachment" &&
    (headers.type === "text/plain" || headers.type === "text/html");
  if (!inlineText) return bodyStart; // an attachment: BODYSTRUCTURE describes it
  const selector = context.alternative ?? {};
  let group = groups.get(selector);
  if (!group) groups.set(selector, group = { plain: [], html: false });
  if (headers.type === "text/html") group.html = true;
  else group.plain.push(leafText(source, bodyStart, part.end, headers));
  return bodyStart;
}

/** The plain-text body of `source`, or undefined when postal-mime must decide. */
export function plainTextOf(source: Uint8Array): PlainText | undefined {
  try {
    const groups = new Map<object, TextGroup>();
    const bodyStart = collect(
      source,
      { start: 0, end: source.length },
      { depth: 0, defaultType: "text/plain", alternative: null, boundaries: [] },
      groups,
    );
    if (groups.size === 0) return { bodyStart, text: null };
    // HTML with no plain alternative: postal-mime converts it; leave that to it.
    for (const group of groups.values()) if (group.plain.length === 0) return undefined;
    const text = [...groups.values()].flatMap((group) => group.plain).join("\n");
    // An empty text makes postal-mime fall back to the HTML: leave that to it too.
    return text === "" ? undefined : { bodyStart, text };
  } catch (error) {
    if (error instanceof NotHandled) return undefined;
    throw error;
  }
}
