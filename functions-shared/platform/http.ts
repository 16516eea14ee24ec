/** Small HTTP helpers shared by the functions. */

/** Generic JSON error bodies: the status says what kind; the reason goes to the log. */
export function errorResponse(status: number, headers: HeadersInit = {}): Response {
  const codes: Record<number, string> = {
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
  return Response.json({ error: codes[status] ?? "error" }, { status, headers });
}

export function isJsonContentType(value: string | null): boolean {
  if (value === null) return false;
  const mediaType = value.split(";")[0].trim().toLowerCase();
  return mediaType === "application/json";
}

/**
 * Reads a request body up to `limit` bytes. Returns null as soon as the body is
 * known to be larger (from Content-Length, or while streaming) without reading
 * further, so an oversized body costs at most `limit` bytes of memory; null too
 * when the client hangs up before the body is complete.
 */
export async function readBodyWithLimit(
  request: Request,
  limit: number,
): Promise<Uint8Array | null> {
  const declared = request.headers.get("content-length");
  if (declared !== null && (!/^[0-9]{1,15}$/.test(declared) || Number(declared) > limit)) {
    await request.body?.cancel().catch(() => {});
    return null;
  }
  if (request.body === null) return new Uint8Array(0);
  // Count while reading even when Content-Length was declared: the runtime in front
  // may not enforce the framing, and a lying header must not buy an unbounded read.
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    // A client that hangs up mid-body gets the same answer as one that sent too much.
    const { done, value } = await reader.read().catch(() => ({ done: false, value: undefined }));
    if (done) break;
    if (value === undefined) return null;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
