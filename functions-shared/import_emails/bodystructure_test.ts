import assert from "node:assert/strict";
import { attachmentsFrom, type BodyStructureNode } from "./bodystructure.ts";

// Trees shaped the way imapflow's parseBodystructure() builds them: the root multipart
// has no part number, children are numbered "1", "1.2", ...; types, disposition and
// parameter names are lower-cased; RFC 2047/2231 parameter values are decoded.

const textPart = (part: string, size = 120): BodyStructureNode => ({
  part,
  type: "text/plain",
  parameters: { charset: "utf-8" },
  size,
});

Deno.test("a plain text message has no attachments", () => {
  assert.deepEqual(
    attachmentsFrom({ type: "text/plain", parameters: { charset: "us-ascii" }, size: 42 }),
    [],
  );
});

Deno.test("text and HTML alternatives are not attachments", () => {
  const tree: BodyStructureNode = {
    type: "multipart/alternative",
    parameters: { boundary: "alt" },
    childNodes: [
      textPart("1"),
      { part: "2", type: "text/html", parameters: { charset: "utf-8" }, size: 900 },
    ],
  };
  assert.deepEqual(attachmentsFrom(tree), []);
});

Deno.test("no structure at all (the server sent none) gives []", () => {
  assert.deepEqual(attachmentsFrom(undefined), []);
  assert.deepEqual(attachmentsFrom({}), []);
  assert.deepEqual(attachmentsFrom({ type: "multipart/mixed", childNodes: [] }), []);
});

Deno.test("nested multipart/mixed: inline image and attachments found, in order, with sizes and part numbers", () => {
  const tree: BodyStructureNode = {
    type: "multipart/mixed",
    parameters: { boundary: "outer" },
    childNodes: [
      {
        part: "1",
        type: "multipart/related",
        parameters: { boundary: "rel" },
        childNodes: [
          {
            part: "1.1",
            type: "multipart/alternative",
            childNodes: [textPart("1.1.1"), { part: "1.1.2", type: "text/html", size: 2048 }],
          },
          {
            part: "1.2",
            type: "image/png",
            parameters: { name: "logo.png" },
            disposition: "inline",
            size: 5120,
          },
        ],
      },
      {
        part: "2",
        type: "application/pdf",
        parameters: { name: "ignored-name.pdf" },
        disposition: "attachment",
        dispositionParameters: { filename: "Report Q3.pdf" },
        size: 1_048_576,
      },
      {
        part: "3",
        type: "TEXT/CSV",
        disposition: "attachment",
        size: 77,
      },
    ],
  };
  assert.deepEqual(attachmentsFrom(tree), [
    { filename: "logo.png", content_type: "image/png", size: 5120, part: "1.2" },
    { filename: "Report Q3.pdf", content_type: "application/pdf", size: 1_048_576, part: "2" },
    { filename: null, content_type: "text/csv", size: 77, part: "3" },
  ]);
});

Deno.test("the disposition filename wins over the content-type name; either one alone makes an attachment", () => {
  const tree: BodyStructureNode = {
    type: "multipart/mixed",
    childNodes: [
      textPart("1"),
      {
        part: "2",
        type: "application/zip",
        dispositionParameters: { filename: "a.zip" },
        size: 10,
      },
      { part: "3", type: "application/zip", parameters: { name: "b.zip" }, size: 11 },
      {
        part: "4",
        type: "application/zip",
        parameters: { name: "n.zip" },
        dispositionParameters: { filename: "f.zip" },
      },
    ],
  };
  assert.deepEqual(attachmentsFrom(tree).map((a) => [a.part, a.filename, a.size]), [
    ["2", "a.zip", 10],
    ["3", "b.zip", 11],
    ["4", "f.zip", null],
  ]);
});

Deno.test("disposition is matched case-insensitively; an inline part without a name is not an attachment", () => {
  const tree: BodyStructureNode = {
    type: "multipart/mixed",
    childNodes: [
      { part: "1", type: "text/plain", disposition: "inline", size: 5 },
      { part: "2", type: "application/octet-stream", disposition: "ATTACHMENT", size: 6 },
    ],
  };
  assert.deepEqual(attachmentsFrom(tree), [
    { filename: null, content_type: "application/octet-stream", size: 6, part: "2" },
  ]);
});

Deno.test("a part without a type is application/octet-stream; a missing size or part is null", () => {
  assert.deepEqual(
    attachmentsFrom({ disposition: "attachment", dispositionParameters: { filename: "x.bin" } }),
    [
      { filename: "x.bin", content_type: "application/octet-stream", size: null, part: null },
    ],
  );
});

Deno.test("NUL bytes are removed from file names; names and types are bounded", () => {
  const tree: BodyStructureNode = {
    type: "multipart/mixed",
    childNodes: [
      {
        part: "1",
        type: "application/x-evil",
        disposition: "attachment",
        dispositionParameters: { filename: "in\u0000voice\u0000.pdf" },
        size: 1,
      },
      {
        part: "2",
        type: `application/${"x".repeat(500)}`,
        parameters: { name: `${"n".repeat(2000)}.txt` },
        size: 2,
      },
      { part: "3", type: "application/x-lone", parameters: { name: "a\uD800b.txt" }, size: 3 },
    ],
  };
  const [nul, long, lone] = attachmentsFrom(tree);
  assert.equal(nul.filename, "invoice.pdf");
  assert.equal(long.filename?.length, 500);
  assert.equal(long.content_type.length, 200);
  assert.equal(lone.filename, "a\uFFFDb.txt");
  for (const attachment of [nul, long, lone]) {
    assert.ok(!JSON.stringify(attachment).includes("\\u0000"));
    assert.ok(attachment.filename?.isWellFormed());
  }
});

Deno.test("at most 200 attachments are listed", () => {
  const tree: BodyStructureNode = {
    type: "multipart/mixed",
    childNodes: Array.from({ length: 500 }, (_, i) => ({
      part: String(i + 1),
      type: "image/jpeg",
      parameters: { name: `p${i}.jpg` },
      size: i,
    })),
  };
  const found = attachmentsFrom(tree);
  assert.equal(found.length, 200);
  assert.equal(found[0].filename, "p0.jpg");
  assert.equal(found[199].filename, "p199.jpg");
});

Deno.test("a hostile, very deep structure is walked to a bounded depth without throwing", () => {
  let node: BodyStructureNode = {
    part: "x",
    type: "application/pdf",
    disposition: "attachment",
    size: 1,
  };
  for (let depth = 0; depth < 10_000; depth++) {
    node = { type: "multipart/mixed", childNodes: [node] };
  }
  assert.deepEqual(attachmentsFrom(node), []);

  let shallow: BodyStructureNode = {
    part: "y",
    type: "application/pdf",
    disposition: "attachment",
    size: 1,
  };
  for (let depth = 0; depth < 5; depth++) {
    shallow = { type: "multipart/mixed", childNodes: [shallow] };
  }
  assert.equal(attachmentsFrom(shallow).length, 1);
});

// A cut through a surrogate pair, or a NUL, would make Postgres refuse the batch's jsonb.
Deno.test({
  name: "attachment strings are always safe for jsonb (cut never splits a pair; no NUL)",
  fn: () => {
    const [attachment] = attachmentsFrom({
      part: "1",
      type: "image/png",
      parameters: { name: `${"a".repeat(499)}😀.png` },
    });
    assert.ok(attachment.filename?.isWellFormed(), JSON.stringify(attachment.filename));
    const [typed] = attachmentsFrom({
      part: "1",
      type: "application/x\u0000\uD800",
      disposition: "attachment",
    });
    assert.ok(
      !typed.content_type.includes("\u0000") && typed.content_type.isWellFormed(),
      typed.content_type,
    );
  },
});

// imapflow gives a message/rfc822 part the encapsulated message's structure as its
// childNodes; it must still be listed as one attachment, not as its inner parts.
Deno.test({
  name: "an attached message/rfc822 is listed as one attachment",
  fn: () => {
    const tree: BodyStructureNode = {
      type: "multipart/mixed",
      childNodes: [
        textPart("1"),
        {
          part: "2",
          type: "message/rfc822",
          disposition: "attachment",
          dispositionParameters: { filename: "original.eml" },
          size: 4000,
          childNodes: [{ part: "2", type: "text/plain", size: 3000 }],
        },
      ],
    };
    assert.deepEqual(attachmentsFrom(tree), [
      { filename: "original.eml", content_type: "message/rfc822", size: 4000, part: "2" },
    ]);
  },
});

Deno.test("attachment names and types from the server lose their control characters", () => {
  const [attachment] = attachmentsFrom({
    type: "application/pdf\u001b[2J",
    disposition: "attachment",
    dispositionParameters: { filename: "invoice\u0007\u001b]0;owned\u0007.pdf" },
  });
  assert.equal(attachment.filename, "invoice  ]0;owned .pdf");
  assert.equal(attachment.content_type, "application/pdf [2j");
});

Deno.test("a structure with fields of the wrong type never throws; what is usable is kept", () => {
  const hostile = {
    type: ["multipart/mixed"],
    childNodes: [
      null,
      42,
      { type: { x: 1 }, disposition: ["attachment"], dispositionParameters: { filename: 7 } },
      {
        type: "application/pdf",
        disposition: "attachment",
        dispositionParameters: { filename: "ok.pdf" },
        size: -3,
        part: { no: 1 },
      },
      { childNodes: "not an array", parameters: { name: "leaf.txt" }, size: 1e300 },
    ],
  } as unknown as BodyStructureNode;
  assert.deepEqual(attachmentsFrom(hostile), [
    { filename: "ok.pdf", content_type: "application/pdf", size: null, part: null },
    { filename: "leaf.txt", content_type: "application/octet-stream", size: null, part: null },
  ]);
});
