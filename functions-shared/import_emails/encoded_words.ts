/**
 * RFC 2047 encoded words (`=?charset?Q|B?text?=`) in header text, decoded.
 *
 * Adjacent encoded words of the same charset and encoding are joined as bytes before
 * they are decoded: RFC 2047 §5 forbids splitting a multi-byte character across two
 * words, but mailers do it (`=?UTF-8?B?5pel5g==?= =?UTF-8?B?nKzoqp4=?=` is 日本語), and
 * decoding each word on its own turns the halves into U+FFFD. Whitespace between two
 * encoded words is not text (§6.2). The charset rule is charsets.ts's.
 */
import { Buffer } from "node:buffer";
import { decodeCharsetOrLatin } from "./charsets.ts";
import { hexDigitValue } from "./hex_digit.ts";

// charset (an RFC 2231 `*language` suffix allowed), encoding, text. No whitespace
// inside a word, so a stray `=?` in running text cannot swallow the rest of the line.
const ENCODED_WORD = /=\?([^?\s*]+)(?:\*[^?\s]*)?\?([QqBb])\?([^?\s]*)\?=/g;
const BETWEEN_WORDS = /^[ \t\r\n]*$/;
const encoder = new TextEncoder();

/** The bytes of one Q word: `_` is a space, `=XX` a byte, anything else itself. */
function qBytes(text: string): Uint8Array {
  const raw = encoder.encode(text);
  const out: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === 0x5f) out.push(0x20);
    else if (
      c === 0x3d && i + 2 < raw.length && hexDigitValue(raw[i + 1]) >= 0 &&
      hexDigitValue(raw[i + 2]) >= 0
    ) {
      out.push((hexDigitValue(raw[i + 1]) << 4) | hexDigitValue(raw[i + 2]));
      i += 2;
    } else out.push(c);
  }
  return Uint8Array.from(out);
}

/** The bytes of one B word (each word padded on its own, as mailers write them). */
function bBytes(text: string): Uint8Array {
  const clean = /^[A-Za-z0-9+/]*$/.test(text) ? text : text.replace(/[^A-Za-z0-9+/]/g, "");
  return Buffer.from(clean, "base64");
}

const replacements = (text: string) => text.split("\ufffd").length - 1;

/**
 * Adjacent words of one charset and encoding, decoded as one byte string. Where that
 * reads worse than word by word (ISO-2022-JP words each end by switching back to
 * ASCII, and the Encoding Standard refuses two switches in a row), word by word.
 */
function decodeJoined(words: Uint8Array[], charset: string): string {
  if (words.length === 1) return decodeCharsetOrLatin(words[0], charset);
  const joined = decodeCharsetOrLatin(Buffer.concat(words), charset);
  if (!joined.includes("\ufffd")) return joined;
  const separate = words.map((word) => decodeCharsetOrLatin(word, charset)).join("");
  return replacements(separate) < replacements(joined) ? separate : joined;
}

/** Header text with every encoded word decoded. */
export function decodeWords(text: string): string {
  if (!text.includes("=?")) return text;
  let out = "";
  let position = 0;
  let pending: { charset: string; encoding: string; words: Uint8Array[] } | null = null;
  const flush = () => {
    if (pending) out += decodeJoined(pending.words, pending.charset);
    pending = null;
  };
  ENCODED_WORD.lastIndex = 0;
  for (let match = ENCODED_WORD.exec(text); match; match = ENCODED_WORD.exec(text)) {
    const between = text.slice(position, match.index);
    const charset = match[1].toLowerCase();
    const encoding = match[2].toUpperCase();
    if (!pending || !BETWEEN_WORDS.test(between)) {
      flush();
      out += between;
    } else if (pending.charset !== charset || pending.encoding !== encoding) {
      flush(); // the whitespace between two encoded words goes (§6.2)
    }
    pending ??= { charset, encoding, words: [] };
    pending.words.push(encoding === "Q" ? qBytes(match[3]) : bBytes(match[3]));
    position = match.index + match[0].length;
  }
  flush();
  return out + text.slice(position);
}
