import assert from "node:assert/strict";
import { errorResponse, isJsonContentType, readBodyWithLimit } from "./http.ts";

const LIMIT = 16 * 1024;
const KIB = 1024;

function post(body: BodyInit | null, headers: Record<string, string> = {}): Request {
  return new Request("http://localhost/fn", { method: "POST", body, headers });
}

/**
 * A stream of `chunks` chunks of `chunkSize` bytes that counts what was pulled.
 * highWaterMark 0: nothing is pulled until someone reads.
 */
function countingStream(chunks: number, chunkSize: number) {
  const stats = { pulls: 0, bytesPulled: 0, cancelled: false };
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      stats.pulls++;
      if (sent === chunks) return controller.close();
      sent++;
      stats.bytesPulled += chunkSize;
      controller.enqueue(new Uint8Array(chunkSize).fill(0x61));
    },
    cancel() {
      stats.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, stats };
}

// --- readBodyWithLimit ---

Deno.test("readBodyWithLimit returns the exact bytes of a body at the limit", async () => {
  const bytes = crypto.getRandomValues(new Uint8Array(LIMIT));
  const body = await readBodyWithLimit(post(bytes), LIMIT);
  assert.deepEqual(body, bytes);
});

Deno.test("readBodyWithLimit returns the bytes of a streamed body at the limit", async () => {
  const { stream } = countingStream(16, KIB);
  const body = await readBodyWithLimit(post(stream), LIMIT);
  assert.equal(body?.byteLength, LIMIT);
  assert.ok(body!.every((byte) => byte === 0x61));
});

Deno.test("readBodyWithLimit returns an empty body for a request without one", async () => {
  assert.deepEqual(await readBodyWithLimit(post(null), LIMIT), new Uint8Array(0));
});

Deno.test("readBodyWithLimit returns null for a body one byte over the limit", async () => {
  assert.equal(await readBodyWithLimit(post(new Uint8Array(LIMIT + 1)), LIMIT), null);
  const { stream } = countingStream(LIMIT + 1, 1);
  assert.equal(await readBodyWithLimit(post(stream), LIMIT), null, "streamed");
});

Deno.test("readBodyWithLimit refuses a too-large Content-Length without reading the stream", async () => {
  const { stream, stats } = countingStream(100, KIB);
  const request = post(stream, { "content-length": String(LIMIT + 1) });
  assert.equal(await readBodyWithLimit(request, LIMIT), null);
  assert.equal(stats.pulls, 0);
  assert.equal(stats.bytesPulled, 0);
});

Deno.test("readBodyWithLimit refuses a non-numeric Content-Length without reading the stream", async () => {
  for (const declared of ["abc", "-1", "1e3", "+10", "0x10", "10, 10", "9".repeat(16)]) {
    const { stream, stats } = countingStream(1, 10);
    assert.equal(
      await readBodyWithLimit(post(stream, { "content-length": declared }), LIMIT),
      null,
      declared,
    );
    assert.equal(stats.pulls, 0, declared);
  }
});

Deno.test("readBodyWithLimit stops reading a chunked stream soon after the limit", async () => {
  const { stream, stats } = countingStream(10 * KIB, KIB); // 10 MiB in 1 KiB chunks
  assert.equal(await readBodyWithLimit(post(stream), LIMIT), null);
  assert.ok(stats.bytesPulled <= LIMIT + 4 * KIB, `pulled ${stats.bytesPulled} bytes`);
  assert.ok(stats.bytesPulled > LIMIT, `pulled ${stats.bytesPulled} bytes`);
});

Deno.test("readBodyWithLimit accepts a body matching its Content-Length at the limit", async () => {
  const bytes = new Uint8Array(LIMIT).fill(1);
  const body = await readBodyWithLimit(post(bytes, { "content-length": String(LIMIT) }), LIMIT);
  assert.equal(body?.byteLength, LIMIT);
});

Deno.test("readBodyWithLimit does not trust a small Content-Length over a larger body", async () => {
  const { stream } = countingStream(10 * KIB, KIB);
  assert.equal(await readBodyWithLimit(post(stream, { "content-length": "10" }), LIMIT), null);
});

// --- isJsonContentType ---

Deno.test("isJsonContentType accepts application/json with parameters and any case", () => {
  for (
    const value of [
      "application/json",
      "application/json; charset=utf-8",
      "Application/JSON",
      " application/json ;charset=UTF-8",
    ]
  ) {
    assert.equal(isJsonContentType(value), true, value);
  }
});

Deno.test("isJsonContentType rejects other media types and a missing header", () => {
  for (
    const value of [
      null,
      "",
      "text/plain",
      "application/jsonx",
      "application/json-patch+json",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=application/json",
      "text/json",
    ]
  ) {
    assert.equal(isJsonContentType(value), false, JSON.stringify(value));
  }
});

// --- errorResponse ---

Deno.test("errorResponse answers a generic JSON body per status", async () => {
  const expected: Record<number, string> = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
  };
  for (const [status, code] of Object.entries(expected)) {
    const response = errorResponse(Number(status));
    assert.equal(response.status, Number(status));
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
    assert.deepEqual(await response.json(), { error: code });
  }
  const unknown = errorResponse(418);
  assert.deepEqual(await unknown.json(), { error: "error" });
});

Deno.test("errorResponse passes extra headers through", async () => {
  const response = errorResponse(405, { Allow: "POST" });
  assert.equal(response.headers.get("allow"), "POST");
  assert.deepEqual(await response.json(), { error: "method_not_allowed" });
});
