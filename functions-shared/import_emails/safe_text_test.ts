import assert from "node:assert/strict";
import { safeLine, safeText } from "./safe_text.ts";

Deno.test("safeText drops NUL, cuts, and repairs a surrogate pair split by the cut", () => {
  assert.equal(safeText("a\u0000b\u0000c", 10), "abc");
  assert.equal(safeText("abcdef", 3), "abc");
  // "😀" is two UTF-16 units: a cut after the first leaves a lone surrogate, made U+FFFD.
  assert.equal(safeText("x😀", 2), "x\ufffd");
  assert.equal(safeText("\ud800 alone", 20), "\ufffd alone");
  // Multi-line text keeps its line breaks and tabs.
  assert.equal(safeText("a\r\n\tb", 10), "a\r\n\tb");
});

Deno.test("safeLine turns every control character into a space: no terminal escape survives", () => {
  assert.equal(safeLine("red \u001b[31mtext\u001b[0m\u0007", 100), "red  [31mtext [0m ");
  assert.equal(safeLine("a\r\nb\tc\u0000d\u007fe\u009bf", 100), "a  b cd e f");
  assert.equal(safeLine("abcdef", 3), "abc");
  assert.equal(safeLine("x😀", 2), "x\ufffd");
  // Printable text outside ASCII is untouched.
  assert.equal(safeLine("café ≠ naïve", 100), "café ≠ naïve");
});
