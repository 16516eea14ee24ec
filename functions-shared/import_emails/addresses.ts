/**
 * Address fields (From, To, Cc) read as RFC 5322 §3.4 defines them, with the obsolete
 * forms §4.4 says a receiver must accept.
 *
 * Parser: npm `email-addresses`, a parser written from RFC 5322's grammar. Comments are
 * not part of an address or a name (§3.2.2): `Pete(A \) chap) <pete(his account)@silly.test>`
 * is Pete at pete@silly.test; a comment after a group is no recipient; groups are
 * flattened; `jdoe@machine(comment).  example` is jdoe@machine.example. postal-mime's
 * own address parser (which the importer used before) and the Nodemailer one behind
 * mailparser are lenient scanners and get comments wrong (README "Parsing").
 *
 * Mail is often not RFC 5322. When the grammar refuses a whole field, each top-level
 * element of the list is tried on its own, so one broken address does not send the
 * others to the fallback; an element the grammar still refuses goes to postal-mime's
 * lenient scanner (`broken <a@b` is still someone). Empty elements (`a@b, , c@d`, §4.4
 * obs-addr-list) are skipped. Names are RFC 2047-decoded (encoded_words.ts).
 *
 * Fast path: the grammar costs ~30 µs a field, as much as the rest of a message's
 * parse. The fields most mail has (`Name <a@b.c>`, `"Name" <a@b.c>`, `a@b.c`, in a
 * list; no comment, group, escape or obsolete form) are read by one regular
 * expression instead, with exactly the grammar's answer (addresses_test.ts checks
 * that on every field of the corpus and the benchmark's mail); anything else meets
 * the grammar.
 */
import emailAddresses from "email-addresses";
import { addressParser } from "postal-mime";
import { decodeWords } from "./encoded_words.ts";

export interface ParsedAddress {
  name: string;
  address: string;
}

// The grammar builds a node per character and costs up to ~20 µs a character on
// hostile input: it reads at most this much of one field (a longer field, hundreds of
// recipients, is split into its elements, which share the budget); the rest goes to
// the lenient scanner. Real fields are far shorter.
const STRICT_BUDGET_CHARS = 2048;

type Mailbox = emailAddresses.ParsedMailbox;

// RFC 5322 atext (RFC 6532: and any non-ASCII), a dot-atom addr-spec, a phrase of
// atoms, a quoted string without escapes or outer white space.
const ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~\\u0080-\\uffff-";
const ADDR_SPEC = `[${ATEXT}]+(?:\\.[${ATEXT}]+)*@[${ATEXT}]+(?:\\.[${ATEXT}]+)*`;
const PHRASE = `[${ATEXT}]+(?:[ \\t]+[${ATEXT}]+)*`;
const QUOTED = String.raw`"(?:[^"\\\s](?:[^"\\\r\n]*[^"\\\s])?)?"`;
const SIMPLE_MAILBOX = new RegExp(
  `[ \\t]*(?:(${PHRASE}|${QUOTED})[ \\t]*<(${ADDR_SPEC})>|(${ADDR_SPEC}))[ \\t]*(?:,|$)`,
  "y",
);

/** The field when it is a plain list of `name <addr>` and `addr`, else null. */
export function simple(value: string): ParsedAddress[] | null {
  const entries: ParsedAddress[] = [];
  SIMPLE_MAILBOX.lastIndex = 0;
  while (SIMPLE_MAILBOX.lastIndex < value.length) {
    const match = SIMPLE_MAILBOX.exec(value);
    if (!match) return null;
    const name = (match[1] ?? "").replace(/^"|"$/g, "").replace(/[ \t]+/g, " ");
    entries.push({ name: decodeWords(name), address: match[2] ?? match[3] });
    if (match[0].endsWith(",") && SIMPLE_MAILBOX.lastIndex === value.length) return null;
  }
  return entries.length > 0 ? entries : null;
}

/** `addr (Full Name)`: the old way to write a name, used when there is no display name. */
function trailingComment(mailbox: Mailbox): string {
  const match = mailbox.node?.tokens.match(/\(((?:[^()\\]|\\.)*)\)\s*$/);
  return match ? match[1].replace(/\\(.)/g, "$1").trim() : "";
}

/** The field by the grammar, or null when it does not parse (or is over the budget). */
export function strict(value: string, budget: { chars: number }): ParsedAddress[] | null {
  if (value.length > budget.chars) return null;
  budget.chars -= value.length;
  let result: emailAddresses.ParsedResult | null;
  try {
    result = emailAddresses({
      input: value,
      rfc6532: true, // UTF-8 in headers (RFC 6532)
      atInDisplayName: true, // `a@b <a@b>`, unquoted: common, and unambiguous
    });
  } catch {
    return null; // e.g. comments nested past the stack
  }
  if (!result) return null;
  return result.addresses
    .flatMap((entry) => entry.type === "group" ? entry.addresses : [entry])
    .map((mailbox) => ({
      name: mailbox.name ? decodeWords(mailbox.name) : decodeWords(trailingComment(mailbox)),
      address: mailbox.address.trim(),
    }));
}

// No address is this long; the scanner reads only this much of an element.
const LENIENT_MAX_CHARS = 2048;

/** postal-mime's scanner for what the grammar refuses: something rather than nothing. */
function lenient(value: string): ParsedAddress[] {
  return addressParser(value.slice(0, LENIENT_MAX_CHARS), { flatten: true }).map((entry) => ({
    name: entry.name ?? "",
    address: "address" in entry ? entry.address ?? "" : "",
  }));
}

/**
 * The elements of an address list: split at commas outside quoted strings, comments,
 * angle brackets and groups (`name: a, b;` stays whole). Elements with nothing but
 * whitespace and comments are left out.
 */
export function listElements(value: string): string[] {
  const elements: string[] = [];
  let start = 0;
  let quoted = false;
  let comment = 0;
  let angle = false;
  let group = false;
  let content = false;
  for (let i = 0; i < value.length; i++) {
    const char = value[i];
    if (char === "\\" && (quoted || comment > 0)) {
      i++;
      continue;
    }
    if (quoted) {
      if (char === '"') quoted = false;
      continue;
    }
    if (comment > 0) {
      if (char === "(") comment++;
      else if (char === ")") comment--;
      continue;
    }
    if (char === "(") comment++;
    else if (char === '"') quoted = content = true;
    else if (char === "<") angle = content = true;
    else if (char === ">") angle = false;
    else if (char === ":" && !angle) group = content = true;
    else if (char === ";" && group) group = false;
    else if (char === "," && !angle && !group) {
      if (content) elements.push(value.slice(start, i));
      start = i + 1;
      content = false;
    } else if (char !== " " && char !== "\t") content = true;
  }
  if (content) elements.push(value.slice(start));
  return elements;
}

/**
 * The first `limit` addresses of an address field, groups flattened, in order. A name
 * that only repeats the address (`"bob@example.com" <bob@example.com>`) is dropped.
 */
export function parseAddresses(value: string, limit = 100): ParsedAddress[] {
  const budget = { chars: STRICT_BUDGET_CHARS };
  let entries = simple(value) ?? strict(value, budget);
  if (entries === null) {
    entries = [];
    for (const element of listElements(value)) {
      entries.push(...(strict(element, budget) ?? lenient(element)));
      if (entries.length >= limit) break;
    }
  }
  entries = entries.slice(0, limit);
  for (const entry of entries) {
    if (entry.name.toLowerCase() === entry.address.toLowerCase()) entry.name = "";
  }
  return entries;
}
