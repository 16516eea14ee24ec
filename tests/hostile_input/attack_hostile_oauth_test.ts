/**
 * A hostile or broken token endpoint (a real local HTTP server) against the OAuth token client
 * (functions-shared/oauth/): huge bodies, slow drips, silence, HTML pages, redirects, wrong
 * token types, missing fields. Each becomes a clear typed error within the time bound, with
 * no token and no provider text in its message, and nothing to store. Needs no stack.
 */
import assert from "node:assert/strict";
import {
  ReconnectNeededError,
  TokenRequestError,
} from "../../functions-shared/oauth/oauth_errors.ts";
import type { OAuthProvider } from "../../functions-shared/oauth/providers.ts";
import { createTokenClient } from "../../functions-shared/oauth/token_client.ts";

const presented = "rt-PRESENTED-refresh-token-0123456789";
const leaked = "at-LEAKED-access-token-0123456789";
const timeoutMs = 1000;

type Handler = (request: Request) => Response | Promise<Response>;

/** A token endpoint on a loopback port of its own; returns the client and a close function. */
function hostileProvider(handler: Handler) {
  const hits: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => {
      hits.push(new URL(request.url).pathname);
      return handler(request);
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const provider: OAuthProvider = {
    name: "hostile",
    issuer: base,
    authorizationEndpoint: `${base}/auth`,
    tokenEndpoint: `${base}/token`,
    revocationEndpoint: `${base}/revoke`,
    scopes: ["openid"],
    authorizationParams: {},
    imap: { host: "127.0.0.1", port: 1 },
    allowLoopbackHttp: true,
  };
  const client = createTokenClient(provider, { clientId: "c", clientSecret: "s" }, {
    bounds: { timeoutMs, maxBytes: 64 * 1024 },
  });
  return { client, hits, close: () => server.shutdown() };
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** Refreshes against the handler; returns the error and how long it took. */
async function refreshFails(handler: Handler): Promise<{ error: Error; ms: number }> {
  const { client, close } = hostileProvider(handler);
  const started = performance.now();
  try {
    await client.refresh(presented);
  } catch (error) {
    const ms = performance.now() - started;
    assert.ok(error instanceof Error);
    for (const secret of [presented, leaked]) {
      assert.ok(!error.message.includes(secret), `no token in "${error.message}"`);
      assert.ok(!String(error.stack).includes(secret), "nor in its stack");
    }
    assert.equal((error as { cause?: unknown }).cause, undefined, "no provider body as cause");
    return { error, ms };
  } finally {
    await close();
  }
  throw new Error("The refresh should have failed");
}

function assertKind(error: Error, kind: TokenRequestError["kind"]) {
  assert.ok(error instanceof TokenRequestError, `${error.name}: ${error.message}`);
  assert.equal(error.kind, kind, error.message);
}

Deno.test("a 10 MiB answer is cut off at the size bound: transient, and quickly", async () => {
  const big = JSON.stringify({
    access_token: leaked,
    token_type: "Bearer",
    pad: "x".repeat(10 << 20),
  });
  const { error, ms } = await refreshFails(() =>
    new Response(big, { headers: { "content-type": "application/json" } })
  );
  assertKind(error, "transient");
  assert.match(error.message, /larger than 65536 bytes/);
  assert.ok(ms < timeoutMs, `${ms} ms`);
});

Deno.test("a 10 MiB answer without Content-Length (chunked) is cut off too", async () => {
  const { error } = await refreshFails(() => {
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ >= 160) return controller.close();
        controller.enqueue(chunk);
      },
    });
    return new Response(body, { headers: { "content-type": "application/json" } });
  });
  assertKind(error, "transient");
});

Deno.test("a slow drip (one byte every 50 ms, forever) ends at the time bound", async () => {
  let timer: ReturnType<typeof setInterval> | undefined;
  const { error, ms } = await refreshFails(() => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"access_token":"'));
        timer = setInterval(() => controller.enqueue(new TextEncoder().encode("a")), 50);
      },
      cancel() {
        clearInterval(timer);
      },
    });
    return new Response(body, { headers: { "content-type": "application/json" } });
  });
  clearInterval(timer);
  assertKind(error, "transient");
  assert.match(error.message, /did not answer in time/);
  assert.ok(ms >= timeoutMs - 50 && ms < timeoutMs + 1500, `${ms} ms`);
});

Deno.test("a server that never answers ends at the time bound", async () => {
  const { error, ms } = await refreshFails((request) =>
    new Promise<Response>((resolve) => {
      // Answers only once the client has given up (so the server can shut down).
      request.signal.addEventListener("abort", () => resolve(new Response("late")));
    })
  );
  assertKind(error, "transient");
  assert.match(error.message, /did not answer in time/);
  assert.ok(ms < timeoutMs + 1500, `${ms} ms`);
});

Deno.test("HTML error pages are refused as not JSON; a 502 page is transient", async () => {
  const page = `<html><body>Bad gateway ${leaked}</body></html>`;
  const html = (status: number) => () =>
    new Response(page, { status, headers: { "content-type": "text/html" } });
  for (const status of [200, 502]) {
    const { error } = await refreshFails(html(status));
    assertKind(error, "transient");
    assert.ok(!error.message.includes("Bad gateway"), "no provider text");
  }
});

Deno.test("JSON with another content type is not taken for JSON", async () => {
  const { error } = await refreshFails(() =>
    new Response(JSON.stringify({ access_token: leaked, token_type: "Bearer" }), {
      headers: { "content-type": "text/plain" },
    })
  );
  assertKind(error, "transient");
});

Deno.test("a token type other than Bearer is refused (mac, DPoP, missing)", async () => {
  for (const tokenType of ["mac", "DPoP", undefined]) {
    const { error } = await refreshFails(() =>
      json({ access_token: leaked, token_type: tokenType, expires_in: 3600 })
    );
    assertKind(error, "invalid_response");
  }
});

Deno.test("missing or mistyped fields are refused", async () => {
  for (
    const body of [
      { token_type: "Bearer", expires_in: 3600 },
      { access_token: 42, token_type: "Bearer" },
      { access_token: leaked, token_type: "Bearer", refresh_token: 7 },
      { access_token: leaked, token_type: "Bearer", expires_in: "soon" },
      [leaked],
      "just a string",
    ]
  ) {
    const { error } = await refreshFails(() => json(body));
    assert.ok(error instanceof TokenRequestError, JSON.stringify(body));
  }
});

Deno.test("invalid_grant is 'reconnect needed', and hostile error text never reaches the message", async () => {
  const { error } = await refreshFails(() =>
    json({
      error: "invalid_grant",
      error_description: `AADSTS70008 \u001b[31m${presented} ${leaked}`,
    }, 400)
  );
  assert.ok(error instanceof ReconnectNeededError, error.message);
  assert.equal(error.oauthError, "invalid_grant");
  assert.ok(!error.message.includes("AADSTS"), error.message);
});

Deno.test("an error code that is not a plain code is reported as unknown, not echoed", async () => {
  const { error } = await refreshFails(() => json({ error: `invalid_grant ${leaked}` }, 400));
  assertKind(error, "transient");
  assert.match(error.message, /"unknown"/);
});

Deno.test("invalid_client is the operator's problem, not the user's", async () => {
  const { error } = await refreshFails(() => json({ error: "invalid_client" }, 401));
  assertKind(error, "client");
});

Deno.test("a redirect from the token endpoint is not followed", async () => {
  const { hits, client, close } = hostileProvider((request) =>
    new URL(request.url).pathname === "/token"
      ? new Response(null, {
        status: 307,
        headers: { location: new URL("/elsewhere", request.url).href },
      })
      : json({ access_token: leaked, token_type: "Bearer" })
  );
  try {
    await assert.rejects(() => client.refresh(presented), TokenRequestError);
    assert.deepEqual(hits, ["/token"], "the refresh token went nowhere else");
  } finally {
    await close();
  }
});

Deno.test("a good answer: Bearer accepted whatever its case; no rotation when no new refresh token", async () => {
  const { client, close } = hostileProvider(() =>
    json({ access_token: leaked, token_type: "bearer", expires_in: 60 })
  );
  try {
    const before = Date.now();
    const tokens = await client.refresh(presented);
    assert.equal(tokens.accessToken, leaked);
    assert.equal(tokens.refreshToken, presented);
    assert.equal(tokens.rotated, false);
    assert.ok(tokens.expiresAt >= before + 60_000 && tokens.expiresAt <= Date.now() + 60_000);
  } finally {
    await close();
  }
});
