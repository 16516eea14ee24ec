/**
 * Mail for the import benchmark (bench/import_bench.ts) and the parser's cross-check
 * (functions-shared/import_emails/mime_text_test.ts): realistic, reproducible RFC 822
 * messages, with no I/O (the seeding into Dovecot is bench/import_mail.ts).
 *
 * Sizes are log-uniform between 2 KB and 200 KB (so most are small: the median is
 * ~20 KB, the mean ~43 KB), plus a few 5 MB ones (a large attachment). Each has the
 * headers real mail has (Received, From, To, often Cc, Subject, Date, Message-ID,
 * replies with In-Reply-To/References, MIME-Version, X-Mailer), and a body that is
 * text/plain (8bit UTF-8), multipart/alternative (text + quoted-printable HTML), or
 * multipart/mixed with a small base64 attachment. Flags and dates vary. Everything
 * comes from a seeded PRNG, so every run sees the same mail.
 */
import { Buffer } from "node:buffer";

export const KB = 1024;
export const MIN_SIZE = 2 * KB;
export const MAX_SIZE = 200 * KB;
export const BIG_SIZE = 5 * 1024 * KB;

/** mulberry32: small, fast, good enough for test data. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "the of and to in is that for it as with was on be by at this from have or are not but " +
  "an which you they all we there been one will would has more their can if about what when " +
  "meeting project invoice quarter report schedule review update please attached thanks regards " +
  "customer delivery order account payment contract draft proposal budget forecast server deploy " +
  "release migration database backup incident ticket support weekend holiday travel lunch office " +
  "café naïve résumé Grüße déjà señor Zürich Ångström coöperate façade"
).split(" ");
const NAMES = [
  ["Alice Martin", "alice.martin"],
  ["Bob Nguyen", "bob"],
  ["Chloé Dubois", "chloe.dubois"],
  ["David Okafor", "d.okafor"],
  ["Eva Schröder", "eva"],
  ["Farid Haddad", "farid.h"],
  ["Grace Liu", "grace"],
  ["Hugo Silva", "hugo.silva"],
  ["Inès Moreau", "ines"],
  ["Jonas Berg", "jonas.berg"],
  ["Keiko Tanaka", "keiko"],
  ["Liam O'Brien", "liam"],
];
const DOMAINS = [
  "example.com",
  "example.org",
  "mail.example.net",
  "corp.example",
  "lists.example.io",
];
const ATTACHMENTS = [
  ["invoice.pdf", "application/pdf"],
  ["photo.jpg", "image/jpeg"],
  ["notes.txt", "text/plain"],
  ["budget.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
  ["diagram.png", "image/png"],
  ["contract.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"],
];
const BIG_ATTACHMENTS = [["site-visit.mp4", "video/mp4"], ["scan-archive.zip", "application/zip"]];

/** Pools generated once; bodies are slices of them, so generating 400 MB of mail stays fast. */
const pools = (() => {
  const random = prng(7);
  const lines: string[] = [];
  let size = 0;
  while (size < 512 * KB) {
    let line = "";
    while (line.length < 60 + random() * 12) {
      line += (line ? " " : "") + WORDS[Math.floor(random() * WORDS.length)];
    }
    lines.push(line);
    size += line.length + 2;
  }
  let binary = "";
  for (let i = 0; i < 57 * KB; i++) binary += String.fromCharCode(Math.floor(random() * 256));
  const base64 = btoa(binary).match(/.{1,76}/g)!.join("\r\n");
  return { lines, base64 };
})();

/** `target` characters of text lines (CRLF), from the line pool at a random place. */
function textOf(random: () => number, target: number): string {
  const out: string[] = [];
  let size = 0;
  let i = Math.floor(random() * pools.lines.length);
  while (size < target) {
    const line = pools.lines[i++ % pools.lines.length];
    out.push(line);
    size += line.length + 2;
    if (random() < 0.12) {
      out.push("");
      size += 2;
    }
  }
  return out.join("\r\n");
}

/** base64 lines of about `target` characters (a repeated random block: it only has to look right). */
function base64Of(target: number): string {
  const block = pools.base64;
  if (target <= block.length) return block.slice(0, Math.max(78, target - (target % 78)));
  const parts: string[] = [];
  let size = 0;
  while (size < target) {
    parts.push(block);
    size += block.length + 2;
  }
  return parts.join("\r\n");
}

/** Quoted-printable for our mostly-ASCII HTML (lines stay under 76 characters). */
function quotedPrintable(text: string): string {
  const encoder = new TextEncoder();
  return text.split("\r\n").map((line) => {
    let out = "";
    let width = 0;
    for (const char of line) {
      let piece: string;
      if (char === "=" || char.charCodeAt(0) > 126) {
        piece = [...encoder.encode(char)].map((b) =>
          "=" + b.toString(16).toUpperCase().padStart(2, "0")
        ).join("");
      } else piece = char;
      if (width + piece.length > 75) {
        out += "=\r\n";
        width = 0;
      }
      out += piece;
      width += piece.length;
    }
    return out;
  }).join("\r\n");
}

function encodedWord(text: string): string {
  if (!/[^\x20-\x7e]/.test(text)) return text;
  return `=?UTF-8?B?${Buffer.from(text, "utf8").toString("base64")}?=`;
}

export interface GeneratedMessage {
  source: Uint8Array;
  flags: string[];
  date: Date;
  big: boolean;
}

/**
 * Message `index` of a mailbox whose big (5 MB) messages sit at `bigIndexes`.
 * The same (seed, index) always gives the same message.
 */
export function generateMessage(
  index: number,
  options: { seed?: number; big?: boolean } = {},
): GeneratedMessage {
  const random = prng((options.seed ?? 1) * 1_000_003 + index);
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)];
  const person = () => {
    const [name, local] = pick(NAMES);
    return { header: `${encodedWord(name)} <${local}@${pick(DOMAINS)}>` };
  };
  const target = options.big
    ? BIG_SIZE
    : Math.round(Math.exp(Math.log(MIN_SIZE) + random() * Math.log(MAX_SIZE / MIN_SIZE)));
  const date = new Date(Date.UTC(2024, 0, 1) + Math.floor(random() * 2 * 365 * 86400) * 1000);
  const domain = pick(DOMAINS);
  const reply = random() < 0.35;
  const subjectWords = Array.from({ length: 3 + Math.floor(random() * 6) }, () => pick(WORDS)).join(
    " ",
  );
  const subject = `${reply ? "Re: " : ""}${subjectWords[0].toUpperCase()}${
    subjectWords.slice(1)
  } #${index}`;
  const messageId = `<${index.toString(36)}.${Math.floor(random() * 1e12).toString(36)}@${domain}>`;
  const to = Array.from({ length: 1 + Math.floor(random() * 3) }, () => person().header).join(
    ",\r\n ",
  );
  const headers = [
    `Return-Path: <bounce-${index}@${domain}>`,
    `Received: from mx${index % 7}.${domain} (mx${index % 7}.${domain} [192.0.2.${
      index % 250
    }])\r\n\tby imap.example.test with ESMTPS id ${
      index.toString(16)
    }\r\n\tfor <me@example.test>; ${date.toUTCString()}`,
    `Received: from client.${domain} ([198.51.100.${index % 250}])\r\n\tby mx${
      index % 7
    }.${domain} with ESMTPSA; ${date.toUTCString()}`,
    `From: ${person().header}`,
    `To: ${to}`,
    ...(random() < 0.3 ? [`Cc: ${person().header}`] : []),
    `Subject: ${encodedWord(subject)}`,
    `Date: ${date.toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: ${messageId}`,
    ...(reply
      ? [
        `In-Reply-To: <${(index + 17).toString(36)}.prev@${domain}>`,
        `References: <${(index + 31).toString(36)}.root@${domain}> <${
          (index + 17).toString(36)
        }.prev@${domain}>`,
      ]
      : []),
    "MIME-Version: 1.0",
    `X-Mailer: ${
      pick(["Apple Mail (2.3774)", "Microsoft Outlook 16.0", "Thunderbird 128.3", "Gmail"])
    }`,
  ].join("\r\n");

  const kind = options.big
    ? "big"
    : random() < 0.55
    ? "plain"
    : random() < 0.55
    ? "alternative"
    : "mixed";
  const boundary = `----=_Part_${index}_${Math.floor(random() * 1e9)}`;
  let body: string;
  let contentType: string;
  const room = Math.max(200, target - headers.length - 300);
  if (kind === "plain") {
    contentType = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit";
    body = textOf(random, room);
  } else if (kind === "alternative") {
    contentType = `Content-Type: multipart/alternative; boundary="${boundary}"`;
    const text = textOf(random, room * 0.4);
    const html = quotedPrintable(
      `<html><head><style>p { margin: 0 }</style></head><body>\r\n` +
        text.split("\r\n\r\n").map((p) => `<p style="font-family: Arial">${p}</p>`).join("\r\n") +
        "\r\n</body></html>",
    );
    body = [
      `--${boundary}`,
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: 8bit",
      "",
      text,
      `--${boundary}`,
      "Content-Type: text/html; charset=utf-8",
      "Content-Transfer-Encoding: quoted-printable",
      "",
      html,
      `--${boundary}--`,
      "",
    ].join("\r\n");
  } else {
    const [filename, type] = kind === "big" ? pick(BIG_ATTACHMENTS) : pick(ATTACHMENTS);
    contentType = `Content-Type: multipart/mixed; boundary="${boundary}"`;
    const attachmentChars = kind === "big" ? room : Math.min(room * 0.6, 40 * KB);
    body = [
      `--${boundary}`,
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: 8bit",
      "",
      textOf(random, room - attachmentChars),
      `--${boundary}`,
      `Content-Type: ${type}; name="${filename}"`,
      `Content-Disposition: attachment; filename="${filename}"`,
      "Content-Transfer-Encoding: base64",
      "",
      base64Of(attachmentChars),
      `--${boundary}--`,
      "",
    ].join("\r\n");
  }
  const source = new TextEncoder().encode(`${headers}\r\n${contentType}\r\n\r\n${body}\r\n`);
  const flags = [
    ...(random() < 0.7 ? ["\\Seen"] : []),
    ...(random() < 0.05 ? ["\\Flagged"] : []),
    ...(reply && random() < 0.3 ? ["\\Answered"] : []),
  ];
  return { source, flags, date, big: kind === "big" };
}

/** Indexes of a mailbox's `bigCount` big messages, spread evenly over `count`. */
export function bigIndexes(count: number, bigCount: number): Set<number> {
  return new Set(
    Array.from(
      { length: Math.min(bigCount, count) },
      (_, i) => Math.floor(((i + 0.5) * count) / bigCount),
    ),
  );
}

/** The messages `from..to-1` of a mailbox of this layout, generated lazily. */
export function* mailboxMessages(
  range: { from: number; to: number },
  layout: { count: number; bigCount: number; seed?: number },
): Generator<GeneratedMessage> {
  const big = bigIndexes(layout.count, layout.bigCount);
  for (let i = range.from; i < range.to; i++) {
    yield generateMessage(i, { seed: layout.seed, big: big.has(i) });
  }
}
