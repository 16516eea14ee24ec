import assert from "node:assert/strict";
import { decodeWords } from "./encoded_words.ts";

Deno.test("text without encoded words is returned as it is", () => {
  assert.equal(decodeWords("plain =? not a word ?= text"), "plain =? not a word ?= text");
});

Deno.test("Q and B words decode in their charset; `_` is a space in Q", () => {
  assert.equal(decodeWords("=?ISO-8859-1?Q?caf=E9_cr=E8me?="), "café crème");
  assert.equal(decodeWords("=?koi8-r?B?8NLJ18XU?="), "Привет");
  assert.equal(decodeWords("=?UTF-8*en?Q?Hello?="), "Hello"); // RFC 2231 language tag
});

Deno.test("white space between encoded words goes; around plain text it stays (RFC 2047 §6.2)", () => {
  assert.equal(decodeWords("=?UTF-8?Q?a?=  \t =?UTF-8?Q?b?="), "ab");
  assert.equal(decodeWords("=?UTF-8?Q?a?= x =?UTF-8?Q?b?="), "a x b");
  assert.equal(decodeWords("Re: =?UTF-8?Q?a?= end"), "Re: a end");
});

Deno.test("adjacent words of one charset and encoding are joined as bytes before decoding", () => {
  // é (C3 A9) split between two Q words and between two padded B words.
  assert.equal(decodeWords("=?UTF-8?Q?caf=C3?= =?utf-8?Q?=A9?="), "café");
  assert.equal(decodeWords("=?UTF-8?B?Y2Fmww==?= =?UTF-8?B?qQ==?="), "café");
  // Different encodings are decoded apart (the split character stays broken).
  assert.equal(decodeWords("=?UTF-8?Q?caf=C3?= =?UTF-8?B?qQ==?="), "caf\ufffd\ufffd");
});

Deno.test("ISO-2022-JP words, each switching back to ASCII, still decode when adjacent", () => {
  // テスト twice, each its own word, as Japanese mailers write subjects.
  const word = "=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=";
  assert.equal(decodeWords(`${word} ${word}`), "テストテスト");
});

Deno.test("an unknown charset reads as UTF-8 when the bytes are, else as windows-1252", () => {
  assert.equal(decodeWords("=?x-unknown?Q?Envoy=C3=A9?="), "Envoyé");
  assert.equal(decodeWords("=?x-unknown?Q?Envoy=E9?="), "Envoyé");
});
