/**
 * Bytes in a declared charset to text: the one home of the charset rule for bodies
 * (mime_text.ts) and encoded words (encoded_words.ts).
 *
 * The rule: a label TextDecoder knows decodes as labelled (the WHATWG Encoding
 * Standard's mapping), except when the label is US-ASCII or unknown and the bytes are
 * valid UTF-8: mailers label UTF-8 text `us-ascii`, or with a name no decoder knows,
 * and then `Envoyé` must not become `EnvoyÃ©`. (US-ASCII text is valid UTF-8 and reads
 * the same either way, so this changes nothing for text that really is ASCII.)
 */

// The US-ASCII labels of the Encoding Standard (all decode as windows-1252) and the
// IANA aliases of US-ASCII.
const ASCII_LABELS = new Set([
  "us-ascii",
  "ascii",
  "ansi_x3.4-1968",
  "ansi_x3.4-1986",
  "iso646-us",
  "iso_646.irv:1991",
  "us",
  "ibm367",
  "cp367",
  "csascii",
  "iso-ir-6",
]);

const decoders = new Map<string, TextDecoder | null>();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** The decoder for a label, or null when the runtime has none (cached either way, bounded). */
export function decoderFor(label: string): TextDecoder | null {
  let decoder = decoders.get(label);
  if (decoder === undefined) {
    try {
      decoder = new TextDecoder(label);
    } catch {
      decoder = null;
    }
    if (decoders.size < 256) decoders.set(label, decoder);
  }
  return decoder;
}

/** Normalised label: trimmed, lower case, quotes gone; utf-8 when there is none. */
export function charsetLabel(charset: string | undefined | null): string {
  if (!charset) return "utf-8";
  if (/^[a-z0-9_.:-]+$/.test(charset)) return charset; // already normal: most labels
  return charset.trim().replace(/^"|"$/g, "").trim().toLowerCase() || "utf-8";
}

/** Whether the label is one this rule reads as UTF-8 when the bytes are UTF-8. */
function utf8Candidate(label: string): boolean {
  return ASCII_LABELS.has(label) || decoderFor(label) === null;
}

/**
 * The text of `bytes` in `charset`, or undefined when the label is unknown and the
 * bytes are not UTF-8 (the caller picks its fallback).
 */
export function decodeCharset(bytes: Uint8Array, charset: string | undefined | null) {
  const label = charsetLabel(charset);
  if (utf8Candidate(label)) {
    try {
      return strictUtf8.decode(bytes);
    } catch {
      // Not UTF-8: as labelled, if we can.
    }
  }
  return decoderFor(label)?.decode(bytes);
}

/** As decodeCharset, with windows-1252 for unknown labels (what postal-mime does too). */
export function decodeCharsetOrLatin(bytes: Uint8Array, charset: string | undefined | null) {
  return decodeCharset(bytes, charset) ?? decoderFor("windows-1252")?.decode(bytes) ??
    utf8.decode(bytes);
}
