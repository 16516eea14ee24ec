/**
 * fetch for a provider's endpoints, bounded: the whole exchange (connect, headers, body) within
 * `timeoutMs`, the body at most `maxBytes` (read in full here, so a slow drip or a huge body is
 * cut off, not streamed to the parser), no redirects followed, JSON only when asked, and only
 * https URLs (plain http only to a loopback host when the caller allows it: a local server).
 */
import { isJsonContentType, readBodyWithLimit } from "../platform/http.ts";
import { TokenRequestError } from "./oauth_errors.ts";

export type FetchBounds = {
  timeoutMs: number;
  maxBytes: number;
  /** Allow http:// to 127.0.0.1 / localhost / [::1] (local authorization servers only). */
  allowLoopbackHttp?: boolean;
  /** Refuse any answer whose Content-Type is not application/json (token endpoints). */
  requireJson?: boolean;
};

export const defaultFetchBounds: FetchBounds = { timeoutMs: 10_000, maxBytes: 64 * 1024 };

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** Whether a provider URL may be used: https, or http to loopback when allowed. */
export function isAllowedEndpoint(url: URL, allowLoopbackHttp = false): boolean {
  if (url.username || url.password) return false;
  if (url.protocol === "https:") return true;
  return url.protocol === "http:" && allowLoopbackHttp && LOOPBACK.has(url.hostname);
}

export async function boundedFetch(
  url: string,
  init: RequestInit,
  bounds: FetchBounds,
): Promise<Response> {
  if (!isAllowedEndpoint(new URL(url), bounds.allowLoopbackHttp)) {
    throw new TokenRequestError("client", "Provider endpoint must be https");
  }
  const timeout = AbortSignal.timeout(bounds.timeoutMs);
  const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
  let response: Response;
  try {
    response = await fetch(url, { ...init, signal, redirect: "manual" });
  } catch {
    throw new TokenRequestError(
      "transient",
      timeout.aborted ? "Provider did not answer in time" : "Provider unreachable",
    );
  }
  if (bounds.requireJson && !isJsonContentType(response.headers.get("content-type"))) {
    await response.body?.cancel().catch(() => {});
    throw new TokenRequestError("transient", `Provider answered ${response.status}, not JSON`);
  }
  // readBodyWithLimit is the one bounded reader; it takes the body and its headers.
  const body = await readBodyWithLimit(
    new Request("http://provider.invalid/", {
      method: "POST",
      headers: response.headers,
      body: response.body,
    }),
    bounds.maxBytes,
  );
  if (body === null) {
    throw new TokenRequestError(
      "transient",
      timeout.aborted
        ? "Provider did not answer in time"
        : `Provider answer larger than ${bounds.maxBytes} bytes or cut off`,
    );
  }
  const nullBody = [101, 204, 205, 304].includes(response.status);
  return new Response(nullBody ? null : body as Uint8Array<ArrayBuffer>, {
    status: response.status,
    headers: response.headers,
  });
}
