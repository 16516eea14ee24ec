/**
 * Attack: HTTP-level tricks, hand-written on a raw TCP socket (fetch refuses to
 * send most of them): duplicated webhook-* headers, oversized headers, obs-fold and
 * control characters, and request-smuggling framings (CL.TE, TE.CL, two
 * Content-Lengths, odd Transfer-Encodings) whose hidden second request is a valid
 * signed request. Each is sent to the gateway (54321) and straight to the
 * function's own `deno serve` (gateway port + 100 + its index).
 *
 * Nothing may be accepted except a single exact valid request: every trick is
 * refused (the HTTP layer answers 400 or closes; the function 401/413/415), no
 * smuggled request is answered, and the run stays dispatched. A control at the end
 * shows the same connection does carry a pipelined valid request to 202, so the
 * smuggling checks would have seen one.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect, stateDir } from "../support/local_stack.ts";
import type { SignedRequest } from "../support/signed_requests.ts";
import {
  assertNoSecretIn,
  assertUntouched,
  collectedBodies,
  Fixtures,
  type RawExchange,
  rawExchange,
  rawHead,
  rawRequest,
  signClaims,
  signedLines,
  type Target,
  TARGETS,
  waitFinished,
} from "../support/attack_support.ts";

const sql = connect();
const fixtures = new Fixtures(sql);
const report: string[] = [];

const bodyText = (request: SignedRequest) => Buffer.from(request.body).toString("latin1");
const junkSignature = `v1,${"A".repeat(43)}=`;

interface Trick {
  name: string;
  build: (target: Target, valid: SignedRequest) => string;
  /** Wait for every response on the connection (smuggling), not just the first. */
  smuggling?: boolean;
}

/** Header lines of `valid` with the named ones replaced by `replacement` (in place of the first). */
function linesWith(valid: SignedRequest, name: string, replacement: string[]): string[] {
  const lines = signedLines(valid);
  const index = lines.findIndex((line) => line.toLowerCase().startsWith(`${name}:`));
  return [...lines.slice(0, index), ...replacement, ...lines.slice(index + 1)];
}

const tricks: Trick[] = [
  // Duplicated webhook-* headers (the signature ones are in their own test below).
  {
    name: "webhook-id twice, same value",
    build: (t, v) =>
      rawHead(t, linesWith(v, "webhook-id", [`webhook-id: ${v.id}`, `webhook-id: ${v.id}`])) +
      bodyText(v),
  },
  {
    name: "webhook-id twice, other id first",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "webhook-id", [`webhook-id: ${crypto.randomUUID()}`, `webhook-id: ${v.id}`]),
      ) + bodyText(v),
  },
  {
    name: "webhook-id twice, other id second",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "webhook-id", [`webhook-id: ${v.id}`, `webhook-id: ${crypto.randomUUID()}`]),
      ) + bodyText(v),
  },
  {
    name: "webhook-timestamp twice, same value",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "webhook-timestamp", [
          `webhook-timestamp: ${v.timestamp}`,
          `webhook-timestamp: ${v.timestamp}`,
        ]),
      ) + bodyText(v),
  },
  {
    name: "webhook-timestamp twice, other value second",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "webhook-timestamp", [
          `webhook-timestamp: ${v.timestamp}`,
          `webhook-timestamp: ${Number(v.timestamp) + 1}`,
        ]),
      ) + bodyText(v),
  },
  {
    name: "content-type twice",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "content-type", [
          "Content-Type: application/json",
          "Content-Type: application/json",
        ]),
      ) + bodyText(v),
  },
  // Names that look alike but are other headers.
  {
    name: "webhook_signature (underscore) instead of webhook-signature",
    build: (t, v) =>
      rawHead(t, linesWith(v, "webhook-signature", [`webhook_signature: ${v.signature}`])) +
      bodyText(v),
  },
  {
    name: "x-webhook-signature instead of webhook-signature",
    build: (t, v) =>
      rawHead(t, linesWith(v, "webhook-signature", [`x-webhook-signature: ${v.signature}`])) +
      bodyText(v),
  },
  {
    name: "space before the colon",
    build: (t, v) =>
      rawHead(t, linesWith(v, "webhook-signature", [`webhook-signature : ${v.signature}`])) +
      bodyText(v),
  },
  // Oversized.
  {
    name: "8 KiB signature header with the valid signature at its end",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "webhook-signature", [
          `webhook-signature: ${"v2,x ".repeat(1638)}${v.signature}`,
        ]),
      ) + bodyText(v),
  },
  {
    name: "64 KiB signature header with the valid signature at its end",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "webhook-signature", [
          `webhook-signature: ${"v2,x ".repeat(13_107)}${v.signature}`,
        ]),
      ) + bodyText(v),
  },
  {
    name: "1000 extra headers",
    build: (t, v) =>
      rawHead(t, [
        ...signedLines(v),
        ...Array.from({ length: 1000 }, (_, i) => `x-filler-${i}: ${i}`),
      ]) + bodyText(v),
  },
  {
    name: "1000 webhook-signature headers, the valid one last",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "webhook-signature", [
          ...Array.from({ length: 999 }, () => `webhook-signature: ${junkSignature}`),
          `webhook-signature: ${v.signature}`,
        ]),
      ) + bodyText(v),
  },
  // Folding and control characters.
  {
    name: "obs-fold: signature continued on a space-indented line",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "webhook-signature", [
          `webhook-signature: ${junkSignature}`,
          ` ${v.signature}`,
        ]),
      ) + bodyText(v),
  },
  {
    name: "obs-fold: signature continued on a tab-indented line",
    build: (t, v) =>
      rawHead(t, linesWith(v, "webhook-signature", ["webhook-signature:", `\t${v.signature}`])) +
      bodyText(v),
  },
  {
    name: "obs-fold: webhook-id split over two lines",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "webhook-id", [`webhook-id: ${v.id.slice(0, 10)}`, ` ${v.id.slice(10)}`]),
      ) + bodyText(v),
  },
  {
    name: "tab inside the webhook-id value",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "webhook-id", [`webhook-id: ${v.id.slice(0, 10)}\t${v.id.slice(10)}`]),
      ) + bodyText(v),
  },
  {
    name: "tab between a junk and the valid signature",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "webhook-signature", [`webhook-signature: ${junkSignature}\t${v.signature}`]),
      ) + bodyText(v),
  },
  {
    name: "vertical tab before the signature",
    build: (t, v) =>
      rawHead(t, linesWith(v, "webhook-signature", [`webhook-signature:\x0b${v.signature}`])) +
      bodyText(v),
  },
  {
    name: "NUL inside the signature value",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "webhook-signature", [
          `webhook-signature: ${junkSignature}\x00${v.signature}`,
        ]),
      ) + bodyText(v),
  },
  {
    name: "bare CR injecting a second signature",
    build: (t, v) =>
      rawHead(
        t,
        linesWith(v, "webhook-signature", [
          `webhook-signature: ${junkSignature}\rwebhook-signature: ${v.signature}`,
        ]),
      ) + bodyText(v),
  },
  {
    name: "non-ASCII byte inside the webhook-id",
    build: (t, v) =>
      rawHead(t, linesWith(v, "webhook-id", [`webhook-id: ${v.id}\u00e9`])) + bodyText(v),
  },
  // Framing: the body says one thing, the headers another.
  {
    name: "Content-Length one byte short",
    build: (t, v) =>
      rawHead(t, linesWith(v, "content-length", [`Content-Length: ${v.body.byteLength - 1}`])) +
      bodyText(v),
    smuggling: true,
  },
  {
    name: "Content-Length larger than the body (the server waits)",
    build: (t, v) =>
      rawHead(t, linesWith(v, "content-length", [`Content-Length: ${v.body.byteLength + 10}`])) +
      bodyText(v),
    smuggling: true,
  },
  {
    name: "two different Content-Lengths, the valid request smuggled after the first",
    build: (t, v) => {
      const smuggled = rawRequest(t, v);
      const junk = "{}";
      return rawHead(t, [
        ...linesWith(v, "content-length", [
          `Content-Length: ${junk.length}`,
          `Content-Length: ${junk.length + smuggled.length}`,
        ]),
      ]) + junk + smuggled;
    },
    smuggling: true,
  },
  {
    name:
      "CL.TE: Content-Length covers everything, chunked ends at once, the valid request follows",
    build: (t, v) => {
      const chunked = `0\r\n\r\n${rawRequest(t, v)}`;
      return rawHead(t, [
        ...linesWith(v, "content-length", [`Content-Length: ${chunked.length}`]),
        "Transfer-Encoding: chunked",
      ]) + chunked;
    },
    smuggling: true,
  },
  {
    name: "TE.CL: chunked carries the valid request, Content-Length stops before it",
    build: (t, v) => {
      const smuggled = rawRequest(t, v);
      const chunked = `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
      return rawHead(t, [
        "Transfer-Encoding: chunked",
        ...linesWith(v, "content-length", ["Content-Length: 4"]),
      ]) + chunked;
    },
    smuggling: true,
  },
  ...["xchunked", "chunked, identity", "identity, chunked", "chunked\x0b", "gzip, chunked"].map((
    coding,
  ): Trick => ({
    name: `Transfer-Encoding "${
      coding.replace("\x0b", "\\v")
    }" with Content-Length, the valid request smuggled`,
    build: (t, v) => {
      const chunked = `0\r\n\r\n${rawRequest(t, v)}`;
      return rawHead(t, [
        ...linesWith(v, "content-length", [`Content-Length: ${chunked.length}`]),
        `Transfer-Encoding: ${coding}`,
      ]) + chunked;
    },
    smuggling: true,
  })),
  {
    name: "two Transfer-Encoding headers (chunked, identity), the valid request smuggled",
    build: (t, v) => {
      const chunked = `0\r\n\r\n${rawRequest(t, v)}`;
      return rawHead(t, [
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: identity",
      ]) + chunked;
    },
    smuggling: true,
  },
  {
    name: "HTTP/1.0 with Transfer-Encoding: chunked, the valid request smuggled",
    build: (t, v) => {
      const chunked = `0\r\n\r\n${rawRequest(t, v)}`;
      return rawHead(t, [
        ...linesWith(v, "content-length", [`Content-Length: ${chunked.length}`]),
        "Transfer-Encoding: chunked",
      ])
        .replace(" HTTP/1.1\r\n", " HTTP/1.0\r\n") + chunked;
    },
    smuggling: true,
  },
  {
    name: "chunk size overflow, the valid request smuggled",
    build: (t, v) =>
      rawHead(t, ["Content-Type: application/json", "Transfer-Encoding: chunked"]) +
      `ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n${rawRequest(t, v)}`,
    smuggling: true,
  },
  {
    name: "the valid body in chunks whose sizes lie (one byte short)",
    build: (t, v) =>
      rawHead(t, [...linesWith(v, "content-length", []), "Transfer-Encoding: chunked"]) +
      `${(v.body.byteLength - 1).toString(16)}\r\n${bodyText(v)}\r\n0\r\n\r\n`,
    smuggling: true,
  },
];

function describe(exchange: RawExchange): string {
  const statuses = exchange.responses.map((response) => response.status).join("+") || "no response";
  return `${statuses}${exchange.closed ? ", closed" : ""}`;
}

for (const target of TARGETS) {
  Deno.test(`header and framing tricks via the ${target.name} (port ${target.port}) are refused; smuggled requests are never answered`, async () => {
    const { runId, claims } = await fixtures.run();
    const valid = signClaims(claims);
    const failures: string[] = [];
    for (const trick of tricks) {
      const exchange = await rawExchange(
        target,
        trick.build(target, valid),
        trick.smuggling ? { responses: Infinity, idleMs: 800 } : {},
      );
      report.push(`${target.name.padEnd(8)} ${describe(exchange).padEnd(22)} ${trick.name}`);
      const statuses = exchange.responses.map((response) => response.status);
      if (statuses.includes(202)) failures.push(`${trick.name}: accepted (${describe(exchange)})`);
      if (statuses.some((status) => ![400, 401, 413, 415, 431].includes(status))) {
        failures.push(`${trick.name}: unexpected ${describe(exchange)}`);
      }
      if (trick.smuggling && statuses.length > 1) {
        failures.push(`${trick.name}: a smuggled request was answered (${describe(exchange)})`);
      }
    }
    assert.deepEqual(failures, []);
    await assertUntouched(sql, runId);

    // Control: the same valid request, pipelined behind a refused one on one
    // connection, is answered and accepted, so the checks above could see it.
    const refused = rawRequest(target, { ...valid, signature: junkSignature });
    const control = await rawExchange(target, refused + rawRequest(target, valid), {
      responses: 2,
    });
    assert.deepEqual(
      control.responses.map((response) => response.status),
      [401, 202],
      describe(control),
    );
    assert.equal(await waitFinished(sql, runId), "skipped");
  });
}

Deno.test("CR or LF in a header value cannot be sent with fetch (header injection stops at the client)", async () => {
  const { runId, claims } = await fixtures.run();
  const valid = signClaims(claims);
  for (
    const value of [
      `${valid.signature}\r\nwebhook-id: x`,
      `${valid.signature}\nx: y`,
      `${valid.signature}\rx`,
      `${valid.signature}\0`,
    ]
  ) {
    await assert.rejects(
      fetch(`http://127.0.0.1:${TARGETS[0].port}${TARGETS[0].path}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "webhook-id": valid.id,
          "webhook-timestamp": valid.timestamp,
          "webhook-signature": value,
        },
        body: valid.body as BodyInit,
      }),
      TypeError,
    );
  }
  await assertUntouched(sql, runId);
});

/**
 * Two webhook-signature field lines reach the function as one value joined with
 * ", " (RFC 9110 5.3). webhook-signature is a space-separated list, not a comma
 * list, so a sender must not repeat it; a request that does is malformed and must
 * be refused whatever the order, and a valid entry in it must not rescue it.
 */
for (const target of TARGETS) {
  Deno.test(`duplicated webhook-signature headers via the ${target.name} are refused (401) in either order`, async () => {
    const orders: Record<string, (valid: string) => string[]> = {
      "valid then invalid": (
        valid,
      ) => [`webhook-signature: ${valid}`, `webhook-signature: ${junkSignature}`],
      "invalid then valid": (
        valid,
      ) => [`webhook-signature: ${junkSignature}`, `webhook-signature: ${valid}`],
      "valid twice": (valid) => [`webhook-signature: ${valid}`, `webhook-signature: ${valid}`],
    };
    // (An empty line plus a valid one is not in this list: the HTTP layer drops the
    // empty value, so the function receives exactly one valid header, as if sent once.)
    const outcomes: string[] = [];
    for (const [order, lines] of Object.entries(orders)) {
      const { runId, claims } = await fixtures.run(); // a run each: an acceptance consumes it
      const valid = signClaims(claims);
      const exchange = await rawExchange(
        target,
        rawHead(target, linesWith(valid, "webhook-signature", lines(valid.signature))) +
          bodyText(valid),
      );
      report.push(
        `${target.name.padEnd(8)} ${
          describe(exchange).padEnd(22)
        } webhook-signature twice, ${order}`,
      );
      outcomes.push(`${order}: ${describe(exchange)}`);
      if (exchange.responses[0]?.status === 202) await waitFinished(sql, runId);
    }
    assert.deepEqual(outcomes, Object.keys(orders).map((order) => `${order}: 401`));
  });
}

/**
 * Anyone can open a connection, promise a body and hang up. Refusals that need no
 * key are logged through the rate-limited rejection log (one line per reason per
 * 10 s), so junk cannot flood the log; an aborted body must not bypass that with an
 * unstructured stack trace per request.
 */
Deno.test("clients that hang up mid-body do not flood the log with unstructured lines", async () => {
  const logPath = `${stateDir}/gateway.log`;
  const before = Deno.readTextFileSync(logPath).length;
  const { runId, claims } = await fixtures.run();
  const valid = signClaims(claims);
  const aborts = 5; // per target; both reach the same function process
  for (const target of TARGETS) {
    for (let i = 0; i < aborts; i++) {
      const head = rawHead(
        target,
        linesWith(valid, "content-length", [`Content-Length: ${valid.body.byteLength + 100}`]),
      );
      const exchange = await rawExchange(target, head + bodyText(valid), {
        responses: Infinity,
        idleMs: 100,
      });
      assert.equal(exchange.responses.length, 0);
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  // Lines other activity may add at the same time (the cron tick's accepted requests) are "info".
  const added = Deno.readTextFileSync(logPath).slice(before).split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith('{"level":"info"'));
  const unstructured = added.filter((line) => {
    try {
      JSON.parse(line);
      return false;
    } catch {
      return true;
    }
  });
  report.push(
    `${
      aborts * TARGETS.length
    } aborted bodies -> ${added.length} log lines, ${unstructured.length} not JSON`,
  );
  assert.deepEqual(
    unstructured.slice(0, 6),
    [],
    `${unstructured.length} unstructured log lines for ${aborts * TARGETS.length} aborted requests`,
  );
  assert.ok(
    added.length <= 4,
    `${added.length} log lines for ${aborts * TARGETS.length} aborted requests: not rate-limited`,
  );
  await assertUntouched(sql, runId);
});

Deno.test("no signing secret in any response body of this file", () => {
  console.log(
    `what the HTTP layer and the function answered (${report.length} cases):\n${report.join("\n")}`,
  );
  assertNoSecretIn(collectedBodies, "header trick responses");
});

fixtures.cleanUpLast();
