import assert from "node:assert/strict";
import PostalMime from "postal-mime";
import { generateMessage } from "../../bench/mail_corpus.ts";
import { corpusMessages } from "../../tests/support/mail_reference.ts";
import { listElements, parseAddresses, simple, strict } from "./addresses.ts";

const pairs = (value: string) =>
  parseAddresses(value).map(({ name, address }) => `${name} <${address}>`);

// RFC 5322 appendix A: what each example means, comments and obsolete forms included.
Deno.test("RFC 5322 appendix A: addresses, groups, quoted names", () => {
  assert.deepEqual(pairs("John Doe <jdoe@machine.example>"), ["John Doe <jdoe@machine.example>"]);
  assert.deepEqual(pairs('"Joe Q. Public" <john.q.public@example.com>'), [
    "Joe Q. Public <john.q.public@example.com>",
  ]);
  assert.deepEqual(pairs("Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>"), [
    "Mary Smith <mary@x.test>",
    " <jdoe@example.org>",
    "Who? <one@y.test>",
  ]);
  assert.deepEqual(pairs('<boss@nil.test>, "Giant; \\"Big\\" Box" <sysservices@example.net>'), [
    " <boss@nil.test>",
    'Giant; "Big" Box <sysservices@example.net>',
  ]);
  assert.deepEqual(pairs("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;"), [
    "Ed Jones <c@a.test>",
    " <joe@where.test>",
    "John <jdoe@one.test>",
  ]);
  assert.deepEqual(pairs("Undisclosed recipients:;"), []);
});

Deno.test("RFC 5322 A.5: comments are neither addresses nor names, however they nest", () => {
  assert.deepEqual(pairs("Pete(A wonderful \\) chap) <pete(his account)@silly.test(his host)>"), [
    "Pete <pete@silly.test>",
  ]);
  assert.deepEqual(
    pairs(
      "A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n" +
        "         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)",
    ),
    ["Chris Jones <c@public.example>", " <joe@example.org>", "John <jdoe@one.test>"],
  );
  assert.deepEqual(pairs("(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;"), []);
  // With no display name, a trailing comment is the name (the RFC 822 way to write one).
  assert.deepEqual(pairs("jdoe@example.org (John Doe)"), ["John Doe <jdoe@example.org>"]);
});

Deno.test("RFC 5322 A.6: the obsolete forms a receiver must accept", () => {
  assert.deepEqual(pairs("Joe Q. Public <john.q.public@example.com>"), [
    "Joe Q. Public <john.q.public@example.com>",
  ]);
  assert.deepEqual(pairs("Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example"), [
    "Mary Smith <mary@example.net>",
    " <jdoe@test.example>",
  ]);
  assert.deepEqual(pairs("John Doe <jdoe@machine(comment).  example>"), [
    "John Doe <jdoe@machine.example>",
  ]);
  assert.deepEqual(pairs("Mary Smith\r\n     \r\n <mary@example.net>"), [
    "Mary Smith <mary@example.net>",
  ]);
});

Deno.test("names are RFC 2047-decoded; a name that only repeats the address is dropped", () => {
  assert.deepEqual(pairs('=?UTF-8?Q?J=C3=B6rg?= <j@x.test>, "=?utf-8?B?SsO2cmc=?=" <k@x.test>'), [
    "Jörg <j@x.test>",
    "Jörg <k@x.test>",
  ]);
  assert.deepEqual(pairs('"bob@example.test" <bob@example.test>'), [" <bob@example.test>"]);
});

Deno.test("what the grammar refuses is read element by element, the rest leniently", () => {
  assert.deepEqual(
    pairs("Jane <jane@example.test> extra, Good <good@example.test>, (just a comment)"),
    ["Jane extra <jane@example.test>", "Good <good@example.test>"],
  );
  assert.deepEqual(pairs("broken <a@b"), ["broken <a@b>"]);
  assert.deepEqual(listElements('"a, b" <x@y>, G: c@d, e@f;, (p, q) g@h, , '), [
    '"a, b" <x@y>',
    " G: c@d, e@f;",
    " (p, q) g@h",
  ]);
});

Deno.test("address lists are bounded, and hostile fields cost bounded time", () => {
  const many = Array.from({ length: 5000 }, (_, i) => `u${i}@example.test`).join(", ");
  assert.equal(parseAddresses(many, 100).length, 100);
  for (const unit of ['a(b"c<d@e', "(((", "a, ", '"\\', "<@a,"]) {
    const hostile = unit.repeat(Math.ceil(1_000_000 / unit.length));
    const start = performance.now();
    const entries = parseAddresses(hostile, 100);
    const elapsed = performance.now() - start;
    assert.ok(entries.length <= 100);
    // ~50 ms on a laptop; the bound only catches runaway (quadratic or worse) cost.
    assert.ok(elapsed < 2000, `${JSON.stringify(unit)}: ${elapsed} ms`);
  }
});

/** Every From, To and Cc field of the corpus and of the benchmark's mail. */
async function addressFields(): Promise<string[]> {
  const sources = [
    ...corpusMessages().map((message) => message.source),
    ...Array.from({ length: 300 }, (_, index) => generateMessage(index, { seed: 7 }).source),
  ];
  const fields: string[] = [];
  for (const source of sources) {
    const { headers } = await PostalMime.parse(source);
    for (const { key, value } of headers) {
      if (key === "from" || key === "to" || key === "cc") fields.push(value);
    }
  }
  return fields;
}

Deno.test("the fast path gives exactly the grammar's answer, and answers for common fields", async () => {
  const fields = await addressFields();
  let answered = 0;
  for (const value of fields) {
    const fast = simple(value);
    if (fast === null) continue;
    answered++;
    assert.deepEqual(fast, strict(value, { chars: Infinity }), value);
  }
  assert.ok(answered / fields.length > 0.8, `fast path answered ${answered} of ${fields.length}`);
  for (let index = 0; index < 300; index++) {
    const { headers } = await PostalMime.parse(generateMessage(index, { seed: 7 }).source);
    for (const { key, value } of headers) {
      if (key === "from" || key === "to" || key === "cc") {
        assert.ok(simple(value), `benchmark mail ${index}: ${value}`);
      }
    }
  }
});

Deno.test("the fast path declines comments, groups, escapes and obsolete forms", () => {
  for (
    const value of [
      "Pete(A chap) <pete@silly.test>",
      "A Group: a@b.c;",
      '"Giant \\"Big\\" Box" <s@e.net>',
      "Joe Q. Public <j@e.com>",
      "jdoe@test  . example",
      "<@node.test:mary@example.net>",
      "a@b.c, , d@e.f",
      "a@b.c,",
      '" padded " <a@b.c>',
    ]
  ) {
    assert.equal(simple(value), null, value);
  }
});
