/**
 * mime_text.ts promises exactly postal-mime's `email.text` whenever it answers, and
 * to answer for the mail people actually send. Every case here is checked against
 * postal-mime itself (an implementation we did not write), the benchmark's whole
 * corpus included.
 */
import assert from "node:assert/strict";
import PostalMime from "postal-mime";
import { generateMessage } from "../../bench/mail_corpus.ts";
import { corpusMessages } from "../../tests/support/mail_reference.ts";
import { plainTextOf } from "./mime_text.ts";

const utf8 = (text: string) => new TextEncoder().encode(text);
const latin1 = (text: string) => Uint8Array.from(text, (char) => char.charCodeAt(0));

/** Asserts the fast path agrees with postal-mime, and returns whether it answered. */
async function agreesWithPostalMime(source: Uint8Array, label: string): Promise<boolean> {
  const fast = plainTextOf(source);
  if (fast === undefined) return false;
  const email = await PostalMime.parse(source);
  assert.equal(fast.text, email.text ?? null, `${label}: text differs from postal-mime`);
  const headersOnly = await PostalMime.parse(source.subarray(0, fast.bodyStart));
  assert.deepEqual(
    headersOnly.headers,
    email.headers,
    `${label}: the header block is cut in the wrong place`,
  );
  return true;
}

const headers = (contentType: string, extra = "") =>
  `From: A <a@example.test>\r\nTo: b@example.test\r\nSubject: s\r\nMessage-ID: <m@example.test>\r\n${extra}` +
  `MIME-Version: 1.0\r\nContent-Type: ${contentType}\r\n`;

/** Shapes real mail has: each must be answered by the fast path, and agree. */
const handled: Record<string, Uint8Array> = {
  "plain, CRLF": utf8(`${headers("text/plain; charset=utf-8")}\r\nHello\r\nworld\r\n`),
  "plain, LF only": utf8(
    headers("text/plain; charset=utf-8").replaceAll("\r\n", "\n") + "\nHello\nworld\n",
  ),
  "plain, no final newline": utf8(`${headers("text/plain")}\r\nlast line`),
  "plain, trailing blank lines and CRs": utf8(
    `${headers("text/plain")}\r\na\r\r\n\r\n\r\nb \t\r\n\r\n`,
  ),
  "plain, no Content-Type at all": utf8(
    "From: a@example.test\r\nSubject: x\r\n\r\nbody ünïcode\r\n",
  ),
  "plain, bare CR inside a line": utf8(`${headers("text/plain")}\r\na\rb\r\n`),
  "plain, latin1": latin1(
    `${headers("text/plain; charset=ISO-8859-1")}\r\nCaf\u00e9 cr\u00e8me\r\n`,
  ),
  "plain, windows-1252 quoted charset": latin1(
    `${headers('text/plain; charset="windows-1252"')}\r\n\u0080 5\r\n`,
  ),
  "plain, shift_jis 8bit": new Uint8Array([
    ...utf8(`${headers("text/plain; charset=shift_jis")}Content-Transfer-Encoding: 8bit\r\n\r\n`),
    0x93,
    0xfa,
    0x96,
    0x7b,
    0x8c,
    0xea,
    0x0d,
    0x0a,
  ]),
  "plain, invalid UTF-8 bytes": new Uint8Array([
    ...utf8(`${headers("text/plain; charset=utf-8")}\r\nbad `),
    0xe2,
    0x0d,
    0x0a,
    0xff,
    0xfe,
    0x0d,
    0x0a,
  ]),
  "plain, quoted-printable with soft breaks and bad escapes": utf8(
    `${headers("text/plain; charset=utf-8")}Content-Transfer-Encoding: quoted-printable\r\n\r\n` +
      "caf=C3=A9 =\r\nsoft=3D =ZZ =4\r\nend=\r\n",
  ),
  "plain, base64": utf8(
    `${headers("text/plain; charset=utf-8")}Content-Transfer-Encoding: base64\r\n\r\n` +
      `${btoa("line one\r\nline two é".replace("é", "\u00c3\u00a9"))}\r\n`,
  ),
  "plain, encoding with odd case and a comment-free suffix": utf8(
    `${headers("text/plain")}Content-Transfer-Encoding: Quoted-Printable \r\n\r\na=3Db\r\n`,
  ),
  "alternative": utf8(
    `${headers('multipart/alternative; boundary="b1"')}\r\npreamble\r\n--b1\r\n` +
      "Content-Type: text/plain; charset=utf-8\r\n\r\nplain text\r\n\r\n--b1\r\n" +
      "Content-Type: text/html\r\n\r\n<p>html</p>\r\n--b1--\r\nepilogue\r\n",
  ),
  "mixed: alternative, attachment, a text attachment": utf8(
    `${headers("multipart/mixed; boundary=outer")}\r\n--outer\r\n` +
      'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n--inner\r\n' +
      "Content-Type: text/plain\r\n\r\nthe text\r\n--inner\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n" +
      "--inner--\r\n\r\n--outer\r\nContent-Type: application/pdf; name=a.pdf\r\n" +
      "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--outer\r\n" +
      'Content-Type: text/plain; name="notes.txt"\r\nContent-Disposition: attachment; filename=notes.txt\r\n\r\n' +
      "not the body\r\n--outer--\r\n",
  ),
  "mixed: two inline text parts are joined": utf8(
    `${
      headers('multipart/mixed; boundary="x"')
    }\r\n--x\r\nContent-Type: text/plain\r\n\r\nfirst\r\n` +
      "--x\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\n\r\nPNG\r\n" +
      "--x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline; filename=b.txt\r\n\r\nsecond\r\n--x--\r\n",
  ),
  "alternative inside alternative (groups, not document order)": utf8(
    `${
      headers('multipart/alternative; boundary="a"')
    }\r\n--a\r\nContent-Type: text/plain\r\n\r\none\r\n` +
      '--a\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\ntwo\r\n' +
      "--b--\r\n--a\r\nContent-Type: text/plain\r\n\r\nthree\r\n--a--\r\n",
  ),
  "delimiters with trailing spaces, a part with no headers": utf8(
    `${
      headers('multipart/mixed; boundary="sp"')
    }\r\n--sp \t\r\n\r\ndefault text/plain\r\n--sp-- \r\n`,
  ),
  "a line that only starts like the boundary": utf8(
    `${
      headers('multipart/mixed; boundary="abc"')
    }\r\n--abc\r\nContent-Type: text/plain\r\n\r\n--abcdef\r\nx--abc\r\n--abc--\r\n`,
  ),
  "duplicate Content-Type: the first wins": utf8(
    "Subject: dup\r\nContent-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nhi\r\n",
  ),
  "folded Content-Type": utf8(
    'Subject: f\r\nContent-Type: multipart/alternative;\r\n\tboundary="fold"\r\n\r\n--fold\r\n' +
      "Content-Type: text/plain;\r\n charset=utf-8\r\n\r\nfolded\r\n--fold--\r\n",
  ),
  "cut at the end of the source, inside the text part and inside a UTF-8 sequence": new Uint8Array([
    ...utf8(
      `${headers('multipart/mixed; boundary="u"')}\r\n--u\r\nContent-Type: text/plain\r\n\r\ncut `,
    ),
    0xc3,
  ]),
  "cut inside an attachment after the text": utf8(
    `${
      headers('multipart/mixed; boundary="a"')
    }\r\n--a\r\nContent-Type: text/plain\r\n\r\nthe text\r\n` +
      "--a\r\nContent-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBBQAAAAI",
  ),
  "cut inside a nested alternative": utf8(
    `${headers('multipart/mixed; boundary="o"')}\r\n--o\r\n` +
      'Content-Type: multipart/alternative; boundary="i"\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\ntext\r\n' +
      "--i\r\nContent-Type: text/html\r\n\r\n<p>te",
  ),
  "no text part at all": utf8(`${headers("application/octet-stream")}\r\nAAAA\r\n`),
};

/** Shapes left to postal-mime: the fast path must decline them. */
const declined: Record<string, Uint8Array> = {
  "an inner multipart never closed before the outer one goes on": utf8(
    `${headers('multipart/mixed; boundary="o"')}\r\n--o\r\n` +
      'Content-Type: multipart/alternative; boundary="i"\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\nx\r\n' +
      "--o\r\nContent-Type: text/plain\r\n\r\ny\r\n--o--\r\n",
  ),
  "cut inside a part's header block": utf8(
    `${
      headers('multipart/mixed; boundary="h"')
    }\r\n--h\r\nContent-Type: text/plain\r\n\r\nthe text\r\n` +
      "--h\r\nContent-Type: application/pdf; na",
  ),
  "multipart without a boundary": utf8(`${headers("multipart/mixed")}\r\nbody\r\n`),
  "format=flowed": utf8(`${headers("text/plain; format=flowed")}\r\nsoft \r\nwrap\r\n`),
  "inline message/rfc822": utf8(
    `${
      headers('multipart/mixed; boundary="r"')
    }\r\n--r\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n--r--\r\n`,
  ),
  "multipart/digest": utf8(
    `${headers('multipart/digest; boundary="d"')}\r\n--d\r\n\r\nSubject: a\r\n\r\nx\r\n--d--\r\n`,
  ),
  "multipart/report": utf8(
    `${headers('multipart/report; boundary="p"')}\r\n--p\r\n\r\nx\r\n--p--\r\n`,
  ),
  "HTML only": utf8(`${headers("text/html")}\r\n<p>only html</p>\r\n`),
  "an empty text part next to HTML": utf8(
    `${headers('multipart/alternative; boundary="e"')}\r\n--e\r\nContent-Type: text/plain\r\n\r\n` +
      "--e\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--e--\r\n",
  ),
  "base64 with spaces": utf8(
    `${headers("text/plain")}Content-Transfer-Encoding: base64\r\n\r\naGVs bG8=\r\n`,
  ),
  "base64 padded on every line": utf8(
    `${headers("text/plain")}Content-Transfer-Encoding: base64\r\n\r\naGk=\r\naGk=\r\n`,
  ),
  "RFC 2231 boundary": utf8(
    `${headers("multipart/mixed; boundary*0=a; boundary*1=b")}\r\n--ab\r\n\r\nx\r\n--ab--\r\n`,
  ),
  "a comment in Content-Type": utf8(`${headers("text/plain (comment); charset=utf-8")}\r\nx\r\n`),
  // Over UTF-8 bytes an unknown label reads as UTF-8 (charsets.ts); over others,
  // postal-mime's aliases and fallbacks decide.
  "unknown charset, bytes not UTF-8": latin1(
    `${headers("text/plain; charset=x-unknown-42")}\r\ncaf\u00e9\r\n`,
  ),
  "utf-16": new Uint8Array([
    ...utf8(`${headers("text/plain; charset=utf-16le")}\r\n`),
    0x68,
    0,
    0x0d,
    0,
    0x0a,
    0,
  ]),
  "iso-2022-jp (stateful)": utf8(
    `${headers("text/plain; charset=iso-2022-jp")}\r\n\x1b$B$3\x1b(B\r\n`,
  ),
  "same boundary nested": utf8(
    `${
      headers('multipart/mixed; boundary="s"')
    }\r\n--s\r\nContent-Type: multipart/alternative; boundary="s"\r\n\r\n--s--\r\n`,
  ),
  "nested deeper than the fast path goes": utf8(
    `Subject: deep\r\n` +
      Array.from(
        { length: 10 },
        (_, i) => `Content-Type: multipart/mixed; boundary="d${i}"\r\n\r\n--d${i}\r\n`,
      ).join("") +
      "Content-Type: text/plain\r\n\r\nx\r\n" +
      Array.from({ length: 10 }, (_, i) => `--d${9 - i}--\r\n`).join(""),
  ),
  "headers only, no empty line": utf8("Subject: only headers\r\nFrom: a@example.test"),
};

Deno.test("the fast path answers for the shapes real mail has, exactly as postal-mime", async () => {
  for (const [label, source] of Object.entries(handled)) {
    assert.ok(
      await agreesWithPostalMime(source, label),
      `${label}: declined, but it is a common shape`,
    );
  }
});

Deno.test("the fast path declines what it is not sure about (postal-mime parses those)", () => {
  for (const [label, source] of Object.entries(declined)) {
    assert.equal(
      plainTextOf(source),
      undefined,
      `${label}: answered, but it should be postal-mime's`,
    );
  }
});

Deno.test("a us-ascii or unknown label over UTF-8 bytes reads as UTF-8 (postal-mime: windows-1252)", () => {
  for (const charset of ["us-ascii", "US-ASCII", "ascii", "x-unknown-42", "utf-9"]) {
    for (const encoding of ["8bit", "quoted-printable", "base64"]) {
      const body = encoding === "8bit"
        ? "Envoy\u00e9 par Bell Mobilit\u00e9\r\n"
        : encoding === "base64"
        ? btoa(String.fromCharCode(...utf8("Envoy\u00e9 par Bell Mobilit\u00e9\n")))
        : "Envoy=C3=A9 par Bell Mobilit=C3=A9\r\n";
      const source = utf8(
        `${
          headers(`text/plain; charset=${charset}`, `Content-Transfer-Encoding: ${encoding}\r\n`)
        }\r\n${body}`,
      );
      assert.equal(plainTextOf(source)?.text, "Envoy\u00e9 par Bell Mobilit\u00e9\n", charset);
    }
  }
  // Labelled us-ascii but not UTF-8: as labelled (windows-1252, the Encoding Standard's
  // mapping of us-ascii), as postal-mime reads it.
  const latin = latin1(`${headers("text/plain; charset=us-ascii")}\r\nEnvoy\u00e9\r\n`);
  assert.equal(plainTextOf(latin)?.text, "Envoy\u00e9\n");
});

Deno.test("the benchmark's mail: every message answered, and equal to postal-mime", async () => {
  for (let index = 0; index < 300; index++) {
    const { source } = generateMessage(index, { seed: 7 });
    assert.ok(await agreesWithPostalMime(source, `message ${index}`), `message ${index}: declined`);
  }
  const big = generateMessage(1, { seed: 7, big: true }).source;
  assert.ok(await agreesWithPostalMime(big, "a 5 MB message"), "a 5 MB message: declined");
  // Cut at the importer's byte bound, inside the attachment: the parts end where the
  // source does, as in postal-mime, and the attachment is never decoded.
  assert.ok(
    await agreesWithPostalMime(big.subarray(0, 1024 * 1024), "a 5 MB message cut at 1 MiB"),
  );
});

Deno.test("the real-world corpus: where the fast path answers, it is postal-mime's text, but for the UTF-8 rule", async () => {
  // Labelled us-ascii, the bytes UTF-8: here postal-mime reads windows-1252 (mojibake).
  const utf8Rule = new Set([
    "enmime__low-quality_incorrect-charset.eml",
    "ruby-mail__error_emails_content_transfer_encoding_plain.eml",
    "ruby-mail__plain_emails_raw_email10.eml",
    "ruby-mail__plain_emails_raw_email6.eml",
  ]);
  let answered = 0;
  for (const { name, source } of corpusMessages()) {
    const fast = plainTextOf(source);
    if (fast === undefined) continue;
    answered++;
    const email = await PostalMime.parse(source);
    if (utf8Rule.has(name)) {
      assert.notEqual(fast.text, email.text, name);
      assert.ok(!/\u00c3[\u0080-\u00bf]/.test(fast.text ?? ""), `${name}: mojibake`);
    } else {
      assert.equal(fast.text, email.text ?? null, name);
    }
  }
  assert.ok(answered >= 180, `the fast path answered only ${answered} messages`);
});
