import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  cleanText,
  DEFAULT_MAX_BODY_CHARS,
  messageKey,
  type ParsedEmail,
  parseMessage,
} from "./message_parser.ts";

// --- helpers ---------------------------------------------------------------------

const utf8 = (text: string) => new TextEncoder().encode(text);

/** Bytes from ASCII strings (one byte per char code, so "\u00e9" is the byte 0xE9) and raw byte arrays. */
function bytes(...parts: Array<string | number[]>): Uint8Array {
  const out: number[] = [];
  for (const part of parts) {
    if (typeof part === "string") {
      for (const char of part) {
        const code = char.charCodeAt(0);
        if (code > 0xff) throw new Error(`Not a byte: ${char}`);
        out.push(code);
      }
    } else {
      out.push(...part);
    }
  }
  return new Uint8Array(out);
}

const base64 = (raw: number[]) => btoa(String.fromCharCode(...raw));
const sha256Hex = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");

/** Every string in the row, wherever it is (nested addresses and arrays included). */
function stringsOf(value: unknown, path = "row"): Array<[string, string]> {
  if (typeof value === "string") return [[path, value]];
  if (Array.isArray(value)) return value.flatMap((item, i) => stringsOf(item, `${path}[${i}]`));
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([key, item]) => stringsOf(item, `${path}.${key}`));
  }
  return [];
}

/** What Postgres text and jsonb accept: no NUL and well-formed UTF-16 (no lone surrogates). */
function assertSafe(row: ParsedEmail) {
  for (const [path, text] of stringsOf(row)) {
    assert.ok(!text.includes("\u0000"), `${path} contains NUL: ${JSON.stringify(text)}`);
    assert.ok(text.isWellFormed(), `${path} is not well-formed UTF-16: ${JSON.stringify(text)}`);
  }
  // The JSON postgres.js sends for jsonb must not carry \u0000 or a lone surrogate escape either.
  const json = JSON.stringify(row);
  assert.ok(!json.includes("\\u0000"), "JSON holds \\u0000");
  assert.ok(!/\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])/i.test(json), "JSON holds a lone high surrogate");
  assert.ok(
    !/(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}/i.test(json),
    "JSON holds a lone low surrogate",
  );
  // The shape of a row is always complete.
  assert.match(row.message_key, /^(mid:.+|sha256:[0-9a-f]{64})$/);
  assert.equal(typeof row.body_truncated, "boolean");
  assert.ok(Array.isArray(row.to_addresses) && Array.isArray(row.cc_addresses));
}

async function parsed(source: Uint8Array, options?: { maxBodyChars?: number }) {
  const row = await parseMessage(source, options);
  assertSafe(row);
  return row;
}

function message(headers: string[], body: string) {
  return utf8([...headers, "", body].join("\r\n"));
}

// --- hostile and malformed mail ------------------------------------------------------

Deno.test("an empty source yields an empty row, keyed by the hash of nothing", async () => {
  const row = await parsed(new Uint8Array(0));
  assert.equal(row.message_key, `sha256:${sha256Hex("")}`);
  assert.equal(row.message_id, null);
  assert.equal(row.subject, null);
  assert.equal(row.from_address, null);
  assert.equal(row.body_text, null);
  assert.equal(row.snippet, null);
  assert.equal(row.parse_error, null);
});

Deno.test("a message with no headers at all keeps its body", async () => {
  const row = await parsed(utf8("\r\nJust a body, no headers.\r\nSecond line.\r\n"));
  assert.equal(row.subject, null);
  assert.equal(row.message_id, null);
  assert.deepEqual(row.to_addresses, []);
  assert.equal(row.sent_at, null);
  assert.match(row.body_text ?? "", /^Just a body, no headers\.\nSecond line\./);
  assert.equal(row.snippet, "Just a body, no headers. Second line.");
  assert.match(row.message_key, /^sha256:[0-9a-f]{64}$/);
});

Deno.test("text without any header or blank line does not throw", async () => {
  const row = await parsed(utf8("this is not a header\nneither is this"));
  assert.equal(row.subject, null);
  assert.match(row.message_key, /^sha256:/);
});

Deno.test("a multipart message without a boundary parameter yields a row with its headers", async () => {
  const row = await parsed(message([
    "Subject: No boundary",
    "Message-ID: <nb@example.test>",
    "Content-Type: multipart/mixed",
  ], "--x\r\nContent-Type: text/plain\r\n\r\nhello\r\n--x--\r\n"));
  assert.equal(row.subject, "No boundary");
  assert.equal(row.message_key, "mid:nb@example.test");
  assert.equal(row.parse_error, null);
});

Deno.test("an unterminated multipart keeps the parts that are there", async () => {
  const row = await parsed(message(
    [
      "Subject: Unterminated",
      'Content-Type: multipart/alternative; boundary="b1"',
    ],
    "preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nthe plain part\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>never closed",
  ));
  assert.equal(row.subject, "Unterminated");
  assert.match(row.body_text ?? "", /^the plain part/);
  assert.equal(row.parse_error, null);
});

Deno.test("MIME nested beyond the parser's limit still yields a row, with parse_error", async () => {
  let source = "Subject: Deep\r\nMessage-ID: <deep@example.test>\r\n";
  for (let i = 0; i < 300; i++) {
    source += `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`;
  }
  source += "Content-Type: text/plain\r\n\r\ninnermost\r\n";
  const row = await parsed(utf8(source));
  assert.match(row.parse_error ?? "", /^Cannot parse message: .*nesting/);
  assert.ok((row.parse_error ?? "").length <= 300);
  // Without a parse, the key falls back to the header hash (stable for the same source).
  assert.match(row.message_key, /^sha256:[0-9a-f]{64}$/);
  assert.equal((await parseMessage(utf8(source))).message_key, row.message_key);
  assert.equal(row.body_text, null);
  assert.equal(row.body_truncated, false);
});

Deno.test("an unknown charset does not throw and keeps the ASCII text", async () => {
  const row = await parsed(bytes(
    "Subject: =?x-unknown-foo?Q?caf=E9_ok?=\r\n",
    "Content-Type: text/plain; charset=x-unknown-foo\r\n",
    "\r\n",
    "plain words ",
    [0xe9, 0xfe],
    " more words\r\n",
  ));
  assert.match(row.subject ?? "", /^caf.* ok$/);
  assert.match(row.body_text ?? "", /^plain words .* more words/);
  assert.equal(row.parse_error, null);
});

Deno.test("legacy charsets: iso-8859-1 body and encoded-word subject", async () => {
  const row = await parsed(bytes(
    "Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?=\r\n",
    "Content-Type: text/plain; charset=iso-8859-1\r\n",
    "Content-Transfer-Encoding: 8bit\r\n",
    "\r\n",
    "Un caf",
    [0xe9],
    ", ",
    [0xe0],
    " bient",
    [0xf4],
    "t\r\n",
  ));
  assert.equal(row.subject, "Café crème");
  assert.equal(row.body_text, "Un café, à bientôt\n");
});

Deno.test("legacy charsets: windows-1252 (euro sign and curly quotes, which iso-8859-1 lacks)", async () => {
  const row = await parsed(bytes(
    "Subject: =?windows-1252?Q?=80_10_=93deal=94?=\r\n",
    "Content-Type: text/plain; charset=windows-1252\r\n",
    "\r\n",
    [0x80],
    "5 ",
    [0x93],
    "quoted",
    [0x94],
    " ",
    [0x96],
    " dash\r\n",
  ));
  assert.equal(row.subject, "€ 10 “deal”");
  assert.equal(row.body_text, "€5 “quoted” – dash\n");
});

Deno.test("legacy charsets: shift_jis body (8bit and base64) and B-encoded subject", async () => {
  const nihongo = [0x93, 0xfa, 0x96, 0x7b, 0x8c, 0xea]; // 日本語
  const eightBit = await parsed(bytes(
    `Subject: =?shift_jis?B?${base64(nihongo)}?=\r\n`,
    "Content-Type: text/plain; charset=shift_jis\r\n",
    "\r\n",
    nihongo,
    "\r\n",
  ));
  assert.equal(eightBit.subject, "日本語");
  assert.equal(eightBit.body_text, "日本語\n");
  const encoded = await parsed(bytes(
    `Subject: =?Shift_JIS?B?${base64(nihongo)}?=\r\n`,
    'Content-Type: text/plain; charset="Shift_JIS"\r\n',
    "Content-Transfer-Encoding: base64\r\n",
    "\r\n",
    `${base64(nihongo)}\r\n`,
  ));
  assert.equal(encoded.subject, "日本語");
  assert.equal(encoded.body_text?.trim(), "日本語");
});

Deno.test("legacy charsets: koi8-r body and encoded-word subject", async () => {
  const privet = [0xf0, 0xd2, 0xc9, 0xd7, 0xc5, 0xd4]; // Привет
  const row = await parsed(bytes(
    `Subject: =?koi8-r?B?${base64(privet)}?= =?KOI8-R?Q?=2C_=CD=C9=D2?=\r\n`,
    "Content-Type: text/plain; charset=koi8-r\r\n",
    "\r\n",
    privet,
    "\r\n",
  ));
  assert.equal(row.subject, "Привет, мир");
  assert.equal(row.body_text, "Привет\n");
  assert.equal(row.snippet, "Привет");
});

Deno.test("raw 8-bit bytes (invalid UTF-8) in headers and body become replacement characters", async () => {
  const row = await parsed(bytes(
    "Subject: bad ",
    [0xff, 0xfe, 0xc3],
    " bytes\r\n",
    "From: ",
    [0xe9, 0x80],
    " <sender@example.test>\r\n",
    "\r\n",
    "body ",
    [0xc3, 0x28, 0xa0, 0xa1],
    " end\r\n",
  ));
  assert.match(row.subject ?? "", /^bad .*\uFFFD.* bytes$/);
  assert.equal(row.from_address?.address, "sender@example.test");
  assert.match(row.body_text ?? "", /^body .* end/);
});

Deno.test("NUL bytes in headers, encoded words and bodies are removed", async () => {
  const raw = await parsed(bytes(
    "Subject: nu",
    [0],
    "ll\r\n",
    "Message-ID: <id",
    [0],
    "x@example.test>\r\n",
    "From: Nu",
    [0],
    "ll <nul@example.test>\r\n",
    "\r\n",
    "bo",
    [0],
    "dy",
    [0, 0],
    "\r\n",
  ));
  assert.equal(raw.subject, "null");
  assert.equal(raw.message_id, "idx@example.test");
  assert.equal(raw.message_key, "mid:idx@example.test");
  assert.equal(raw.from_address?.name, "Null");
  assert.equal(raw.body_text, "body\n");

  const encoded = await parsed(message([
    "Subject: =?utf-8?Q?a=00b?=",
    "To: =?utf-8?B?" + btoa("N\u0000ame") + "?= <to@example.test>",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
  ], "x=00y=00\r\n"));
  assert.equal(encoded.subject, "ab");
  assert.deepEqual(encoded.to_addresses, [{ name: "Name", address: "to@example.test" }]);
  assert.equal(encoded.body_text, "xy\n");
});

Deno.test("a UTF-16 encoded word holding a lone surrogate comes out well-formed", async () => {
  // "A", a lone high surrogate, "B" in UTF-16LE.
  const row = await parsed(message([
    `Subject: =?utf-16le?B?${base64([0x41, 0x00, 0x00, 0xd8, 0x42, 0x00])}?=`,
  ], "x"));
  assert.match(row.subject ?? "", /^A.*B$/);
});

// A cap between the two halves of a surrogate pair would leave a lone surrogate, which
// Postgres refuses in jsonb: the folder could never import past that message.
Deno.test({
  name: "caps never split a surrogate pair (snippet, subject, names)",
  fn: async () => {
    const emoji = "😀".repeat(20);
    const row = await parseMessage(message([
      `Subject: ${"s".repeat(1999)}${emoji}`,
      `From: "${"n".repeat(299)}${emoji}" <a@example.test>`,
      "Content-Type: text/plain; charset=utf-8",
    ], `${"a".repeat(199)}${emoji}`));
    assertSafe(row);
    assert.ok(cleanText(`${"x".repeat(9)}😀`, 10)?.isWellFormed());
  },
});

Deno.test("the body cap cuts between the halves of a surrogate pair without leaving a lone one", async () => {
  const row = await parsed(
    message(["Content-Type: text/plain; charset=utf-8"], `${"a".repeat(99)}${"😀".repeat(50)}`),
    { maxBodyChars: 100 },
  );
  assert.equal(row.body_truncated, true);
  assert.ok((row.body_text ?? "").length <= 100);
  assert.ok(row.body_text?.startsWith("a".repeat(99)));
});

Deno.test("a 5 MB single-part body is cut to the body cap and marked truncated", async () => {
  const line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrst\r\n";
  const body = line.repeat(Math.ceil((5 * 1024 * 1024) / line.length));
  const source = message(["Subject: Big", "Content-Type: text/plain; charset=utf-8"], body);
  assert.ok(source.length >= 5 * 1024 * 1024);

  const row = await parsed(source);
  assert.equal(row.subject, "Big");
  assert.equal(row.body_truncated, true);
  assert.equal(row.body_text?.length, DEFAULT_MAX_BODY_CHARS);
  assert.ok(row.body_text?.startsWith("0123456789abcdef"));
  assert.equal(row.snippet?.length, 200, "the snippet has its own, smaller cap");

  const capped = await parsed(source, { maxBodyChars: 1000 });
  assert.equal(capped.body_truncated, true);
  assert.equal(capped.body_text?.length, 1000);
  assert.equal(capped.body_text, row.body_text?.slice(0, 1000));
});

Deno.test("a body exactly at the cap is not marked truncated; one character more is", async () => {
  const exact = await parsed(message(["Content-Type: text/plain"], "x".repeat(50)), {
    maxBodyChars: 51,
  });
  // postal-mime ends the text with the final line break: 50 x + "\n" = 51 characters.
  assert.equal(exact.body_text, `${"x".repeat(50)}\n`);
  assert.equal(exact.body_truncated, false);
  const over = await parsed(message(["Content-Type: text/plain"], "x".repeat(51)), {
    maxBodyChars: 51,
  });
  assert.equal(over.body_text, "x".repeat(51));
  assert.equal(over.body_truncated, true);
});

Deno.test("a source cut at the byte bound keeps the headers and the text that fit", async () => {
  const text = "Start of the report. " + "Lorem ipsum dolor sit amet. ".repeat(100) + "END-OF-TEXT";
  const full = message(
    [
      "Message-ID: <cut@example.test>",
      "From: Carol <carol@example.test>",
      "To: Dan <dan@example.test>",
      "Subject: A long report",
      "Date: Mon, 2 Nov 2026 10:00:00 +0000",
      'Content-Type: multipart/mixed; boundary="outer"',
    ],
    [
      "--outer",
      "Content-Type: text/plain; charset=utf-8",
      "",
      text,
      "--outer",
      "Content-Type: application/pdf; name=report.pdf",
      "Content-Transfer-Encoding: base64",
      "",
      btoa("%PDF".repeat(1000)).replace(/.{76}/g, "$&\r\n"),
      "--outer--",
      "",
    ].join("\r\n"),
  );
  const whole = await parsed(full);
  assert.ok(whole.body_text?.includes("END-OF-TEXT"));

  const cutAt = new TextDecoder().decode(full).indexOf("Lorem ipsum") + 500;
  const cut = await parsed(full.subarray(0, cutAt));
  assert.equal(cut.subject, "A long report");
  assert.equal(cut.message_id, "cut@example.test");
  assert.equal(cut.message_key, whole.message_key, "same identity whether cut or not");
  assert.deepEqual(cut.from_address, { name: "Carol", address: "carol@example.test" });
  assert.deepEqual(cut.to_addresses, [{ name: "Dan", address: "dan@example.test" }]);
  assert.equal(cut.sent_at, "2026-11-02T10:00:00.000Z");
  assert.ok(cut.body_text?.startsWith("Start of the report. Lorem ipsum"), cut.body_text ?? "");
  assert.ok(!cut.body_text?.includes("END-OF-TEXT"));
  assert.ok((cut.body_text?.length ?? 0) > 400, "the text that fit is kept");
  assert.equal(cut.parse_error, null);

  // Cut inside the attachment: the whole text part is there.
  const inAttachment = await parsed(
    full.subarray(0, new TextDecoder().decode(full).indexOf("JVBER") + 100),
  );
  assert.ok(inAttachment.body_text?.includes("END-OF-TEXT"));

  // Cut inside the header block: what was read of the headers is kept.
  const inHeaders = await parsed(full.subarray(0, 70));
  assert.equal(inHeaders.message_id, "cut@example.test");
  assert.equal(inHeaders.body_text, null);
});

Deno.test("quoted-printable and base64 bodies cut mid-sequence do not throw", async () => {
  const qp = await parsed(message([
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
  ], "hello=\r\nworld =C3=A9=C3"));
  assert.match(qp.body_text ?? "", /^helloworld é/);
  const b64 = await parsed(message([
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: base64",
  ], btoa("hello world, this is base64").slice(0, 21)));
  assert.match(b64.body_text ?? "", /^hello world, th/);
});

Deno.test("an HTML-only message gets a readable text body: tags, scripts and styles gone, entities decoded", async () => {
  const row = await parsed(
    message(
      ["Subject: Newsletter", "Content-Type: text/html; charset=utf-8"],
      [
        "<html><head><title>T</title><style>p { color: red }</style></head><body>",
        "<script>alert('x')</script>",
        "<h1>Hello &amp; welcome</h1><p>Fish &lt;3 chips&nbsp;today</p>",
        "<div>Line&#39;s <b>bold</b> &quot;quoted&quot;</div><br>last",
        "</body></html>",
      ].join("\r\n"),
    ),
  );
  const text = row.body_text ?? "";
  assert.ok(!/[<>]\w/.test(text.replace("<3", "")), text);
  assert.ok(!text.includes("alert"), "scripts are dropped");
  assert.ok(!text.includes("color: red"), "styles are dropped");
  assert.ok(text.includes("Hello & welcome"), text);
  assert.ok(text.includes("Fish <3 chips today"), text);
  assert.ok(text.includes(`Line's bold "quoted"`), text);
  assert.match(text, /\nlast$/);
  assert.ok(row.snippet?.startsWith("Hello & welcome"), row.snippet ?? "");
});

Deno.test("a text part wins over the HTML alternative", async () => {
  const row = await parsed(message(
    ['Content-Type: multipart/alternative; boundary="alt"'],
    [
      "--alt",
      "Content-Type: text/plain",
      "",
      "plain version",
      "--alt",
      "Content-Type: text/html",
      "",
      "<p>html version</p>",
      "--alt--",
    ].join("\r\n"),
  ));
  assert.equal(row.body_text?.trim(), "plain version");
});

// --- identity ------------------------------------------------------------------------------

Deno.test("Message-ID: angle brackets and surrounding spaces are stripped; the key is mid:<id>", async () => {
  for (
    const header of [
      "Message-ID: <abc.123@example.test>",
      "Message-ID:   <abc.123@example.test>   ",
      "Message-Id: abc.123@example.test",
    ]
  ) {
    const row = await parsed(message([header], "x"));
    assert.equal(row.message_id, "abc.123@example.test", header);
    assert.equal(row.message_key, "mid:abc.123@example.test", header);
  }
});

Deno.test("an empty Message-ID counts as none", async () => {
  for (const header of ["Message-ID: <>", "Message-ID:    "]) {
    const row = await parsed(message([header, "Subject: s"], "x"));
    assert.equal(row.message_id, null, header);
    assert.match(row.message_key, /^sha256:[0-9a-f]{64}$/, header);
  }
});

Deno.test("without a Message-ID the key is sha256 of the raw header block: same headers, same key", async () => {
  const headers = [
    "From: a@example.test",
    "Subject: No id",
    "Date: Mon, 2 Nov 2026 10:00:00 +0000",
  ];
  const one = await parsed(message(headers, "first body"));
  const two = await parsed(message(headers, "a different body, same headers"));
  assert.match(one.message_key, /^sha256:[0-9a-f]{64}$/);
  assert.equal(one.message_id, null);
  assert.equal(two.message_key, one.message_key, "the body is not part of the key");

  const changed = await parsed(message([headers[0], "Subject: No id!", headers[2]], "first body"));
  assert.notEqual(changed.message_key, one.message_key, "a changed header changes the key");
  const reordered = await parsed(message([headers[1], headers[0], headers[2]], "first body"));
  assert.notEqual(
    reordered.message_key,
    one.message_key,
    "the raw bytes count, not the parsed values",
  );
});

Deno.test("the header hash is pinned: stored keys must survive code changes", async () => {
  // LF line endings: the block is everything before the blank line.
  const lf = utf8("From: a@example.test\nSubject: Pinned\n\nbody\n");
  assert.equal(
    (await parsed(lf)).message_key,
    `sha256:${sha256Hex("From: a@example.test\nSubject: Pinned")}`,
  );
  // CRLF: everything before the "\n\r\n" that ends the block (the last header's "\r" included).
  const crlf = utf8("From: a@example.test\r\nSubject: Pinned\r\n\r\nbody\r\n");
  assert.equal(
    (await parsed(crlf)).message_key,
    `sha256:${sha256Hex("From: a@example.test\r\nSubject: Pinned\r")}`,
  );
  assert.equal(messageKey(null, crlf), (await parseMessage(crlf)).message_key);
  assert.equal(messageKey("x@y", crlf), "mid:x@y");
});

Deno.test("References are split into ids without brackets; In-Reply-To is normalised", async () => {
  const row = await parsed(message([
    "Message-ID: <c@example.test>",
    "In-Reply-To: <b@example.test>",
    "References: <a@example.test> <b@example.test>",
    "\t<folded@example.test>",
  ], "x"));
  assert.equal(row.in_reply_to, "b@example.test");
  assert.deepEqual(row.references, ["a@example.test", "b@example.test", "folded@example.test"]);

  const none = await parsed(message(["Subject: no refs"], "x"));
  assert.ok(
    none.references === null || (Array.isArray(none.references) && none.references.length === 0),
  );
  assert.equal(none.in_reply_to, null);
});

Deno.test("References are bounded to 200 ids", async () => {
  const ids = Array.from({ length: 500 }, (_, i) => `<r${i}@example.test>`).join(" ");
  const row = await parsed(message([`References: ${ids}`], "x"));
  assert.equal(row.references?.length, 200);
  assert.equal(row.references?.[0], "r0@example.test");
});

// --- dates and addresses ----------------------------------------------------------------------

Deno.test("a valid Date becomes ISO 8601 in UTC; garbage and absurd years become null", async () => {
  const cases: Array<[string, string | null]> = [
    ["Date: Mon, 2 Nov 2026 10:00:00 +0100", "2026-11-02T09:00:00.000Z"],
    ["Date: 2 Nov 2026 10:00:00 GMT", "2026-11-02T10:00:00.000Z"],
    ["Date: not a date at all", null],
    ["Date: Mon, 99 Foo 20xx 99:99:99 +9999", null],
    ["Date: Mon, 1 Jan 1900 10:00:00 +0000", null],
    ["Date: Fri, 1 Jan 9999 10:00:00 +0000", null],
    ["Subject: no date", null],
  ];
  for (const [header, expected] of cases) {
    const row = await parsed(message([header], "x"));
    assert.equal(row.sent_at, expected, header);
  }
});

Deno.test("address groups are flattened; an empty group adds nobody", async () => {
  const row = await parsed(message([
    'From: "Bob, Jr." <bob@example.test>',
    "To: Friends: a@example.test, Bee <b@example.test>;, c@example.test",
    "Cc: undisclosed-recipients:;",
  ], "x"));
  assert.deepEqual(row.from_address, { name: "Bob, Jr.", address: "bob@example.test" });
  assert.deepEqual(row.to_addresses, [
    { name: null, address: "a@example.test" },
    { name: "Bee", address: "b@example.test" },
    { name: null, address: "c@example.test" },
  ]);
  assert.deepEqual(row.cc_addresses, []);
});

Deno.test("address lists are bounded to 100 entries", async () => {
  const to = Array.from({ length: 500 }, (_, i) => `u${i}@example.test`).join(", ");
  const row = await parsed(message(["From: a@example.test", `To: ${to}`], "x"));
  assert.equal(row.to_addresses.length, 100);
  assert.deepEqual(row.to_addresses[99], { name: null, address: "u99@example.test" });
});

Deno.test("a huge subject is capped at 2000 characters", async () => {
  const row = await parsed(message([`Subject: ${"s".repeat(10_000)}`], "x"));
  assert.equal(row.subject?.length, 2000);
});

// --- helpers of the module ----------------------------------------------------------------------

Deno.test("cleanText: NUL removed, lone surrogates replaced, capped, empty becomes null, non-strings null", () => {
  assert.equal(cleanText("a\u0000b"), "ab");
  assert.equal(cleanText("x\uD800y"), "x\uFFFDy");
  assert.equal(cleanText("\uDC00"), "\uFFFD");
  assert.equal(cleanText("abcdef", 3), "abc");
  assert.equal(cleanText(""), null);
  assert.equal(cleanText("\u0000"), null);
  assert.equal(cleanText(undefined), null);
  assert.equal(cleanText(42), null);
  assert.equal(cleanText("x".repeat(5000))?.length, 2000);
});

Deno.test("terminal escapes in header fields are not stored; the body keeps its lines", async () => {
  const source = new TextEncoder().encode([
    "From: =?utf-8?B?" + btoa("Eve \u001b[31mred\u0007") + "?= <eve@example.test>",
    "Subject: =?utf-8?B?" + btoa("hi \u001b]0;owned\u0007 there") + "?=",
    "Message-ID: <esc@example.test>",
    "",
    "line one\r\n\tline two \u001b[2J",
    "",
  ].join("\r\n"));
  const parsed = await parseMessage(source);
  // deno-lint-ignore no-control-regex
  const controls = /[\u0000-\u001f\u007f-\u009f]/;
  assert.doesNotMatch(parsed.subject ?? "", controls);
  assert.equal(parsed.subject, "hi  ]0;owned  there");
  assert.doesNotMatch(parsed.from_address?.name ?? "", controls);
  assert.doesNotMatch(parsed.snippet ?? "", controls);
  assert.match(parsed.body_text ?? "", /line one\n\tline two/);
});

// --- mail as real mailers write it (issue 18; each failed before) ----------------------

Deno.test("HTML-only mail: every character reference is decoded, named and numeric, once", async () => {
  const row = await parsed(message(
    ["Subject: Gruss", "Content-Type: text/html; charset=utf-8"],
    [
      "<p>Freundliche Gr&uuml;&szlig;e aus der Hauptstra&szlig;e 1</p>",
      "<p>&bdquo;Zitat&ldquo; &#252;ber &#xFC;ber &#XFC;ber &euro;5 &copy; caf&eacute;</p>",
      "<p>&lt;b&gt; stays text, &amp;lt; stays &amp;lt;, &unknownref; stays</p>",
    ].join("\r\n"),
  ));
  const text = row.body_text ?? "";
  assert.ok(text.includes("Freundliche Grüße aus der Hauptstraße 1"), text);
  assert.ok(text.includes("„Zitat“ über über über €5 © café"), text);
  assert.ok(text.includes("<b> stays text, &lt; stays &lt;, &unknownref; stays"), text);
  assert.ok(row.snippet?.startsWith("Freundliche Grüße"), row.snippet ?? "");
});

Deno.test("comments in address fields are neither addresses nor names (RFC 5322 §3.2.2, A.5)", async () => {
  const row = await parsed(message([
    "From: Pete(A wonderful \\) chap) <pete(his account)@silly.test(his host)>",
    "To: A Group(Some people)",
    "     :Chris Jones <c@(Chris's host.)public.example>,",
    "         joe@example.org,",
    "  John <jdoe@one.test> (my dear friend); (the end of the group)",
    "Cc:(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;",
  ], "x"));
  assert.deepEqual(row.from_address, { name: "Pete", address: "pete@silly.test" });
  assert.deepEqual(row.to_addresses, [
    { name: "Chris Jones", address: "c@public.example" },
    { name: null, address: "joe@example.org" },
    { name: "John", address: "jdoe@one.test" },
  ]);
  assert.deepEqual(row.cc_addresses, []);
});

Deno.test("the obsolete address syntax a receiver must parse is parsed (RFC 5322 §4, A.6)", async () => {
  const row = await parsed(message([
    "From  : John Doe <jdoe@machine(comment).  example>",
    "To  : Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example",
    "Cc: Joe Q. Public <john.q.public@example.com>",
  ], "x"));
  assert.deepEqual(row.from_address, { name: "John Doe", address: "jdoe@machine.example" });
  assert.deepEqual(row.to_addresses, [
    { name: "Mary Smith", address: "mary@example.net" },
    { name: null, address: "jdoe@test.example" },
  ]);
  assert.deepEqual(row.cc_addresses, [
    { name: "Joe Q. Public", address: "john.q.public@example.com" },
  ]);
});

Deno.test("an encoded word that splits a multi-byte character is joined with its neighbour (RFC 2047)", async () => {
  const row = await parsed(message([
    // 日本語: 本 (E6 9C AC) split after its first byte, each word padded on its own.
    "Subject: =?UTF-8?B?5pel5g==?= =?UTF-8?B?nKzoqp4=?=",
    // The same split in Q, the charset spelled differently in each word.
    "From: =?UTF-8?Q?=E6=97=A5=E6?=\r\n =?utf-8?Q?=9C=AC=E8=AA=9E?= <jp@example.test>",
  ], "x"));
  assert.equal(row.subject, "日本語");
  assert.deepEqual(row.from_address, { name: "日本語", address: "jp@example.test" });
  // Words in different charsets are not joined; text between words stays.
  const mixed = await parsed(message([
    "Subject: =?ISO-8859-1?Q?caf=E9?= =?UTF-8?Q?_cr=C3=A8me?= and =?UTF-8?Q?br=C3=BBl=C3=A9e?=",
  ], "x"));
  assert.equal(mixed.subject, "café crème and brûlée");
});

Deno.test("a us-ascii or unknown charset over valid UTF-8 bytes is read as UTF-8", async () => {
  for (const charset of ["us-ascii", "x-unknown-charset"]) {
    const plain = await parsed(message(
      [
        `Subject: =?${charset}?Q?Envoy=C3=A9?=`,
        `Content-Type: text/plain; charset=${charset}`,
        "Content-Transfer-Encoding: 8bit",
      ],
      "Envoyé par le service de messagerie texte de Bell Mobilité.",
    ));
    assert.equal(plain.subject, "Envoyé", charset);
    assert.equal(plain.body_text, "Envoyé par le service de messagerie texte de Bell Mobilité.\n");
    const quoted = await parsed(message(
      [
        `Content-Type: text/plain; charset="${charset}"`,
        "Content-Transfer-Encoding: quoted-printable",
      ],
      "Envoy=C3=A9",
    ));
    assert.equal(quoted.body_text, "Envoyé\n", charset);
  }
  // Bytes that are not UTF-8 keep the label's reading (us-ascii is windows-1252 in the
  // Encoding Standard): 0xE9 is é there.
  const latin = await parsed(bytes(
    "Content-Type: text/plain; charset=us-ascii\r\n\r\nEnvoy",
    [0xe9],
    "\r\n",
  ));
  assert.equal(latin.body_text, "Envoyé\n");
});
