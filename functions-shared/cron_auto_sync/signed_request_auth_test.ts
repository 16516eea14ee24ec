import assert from "node:assert/strict";
import { Hono } from "hono";
import { createMemoryLogger } from "../platform/log.ts";
import { parseKeyring } from "../wire/standard_webhooks.ts";
import {
  assertGenericRefusal,
  assertNoSecret,
  NOW,
  OTHER_SECRET,
  type RequestOptions,
  SECRET,
  signedRequest,
  streamOf,
  URL,
  USER_ID,
} from "../../tests/support/cron_requests.ts";
import { createRejectionLog } from "./rejection_log.ts";
import {
  MAX_BODY_BYTES,
  signedRequestAuth,
  type SignedRequestEnv,
  type SignedRun,
} from "./signed_request_auth.ts";

/** The middleware in front of a route that records what reached it and answers 202. */
function setup(options: { secrets?: string[] } = {}) {
  const log = createMemoryLogger();
  const now = () => NOW * 1000 + 999; // 999 ms into the second: the middleware must floor
  const keyring = parseKeyring(
    (options.secrets ?? [SECRET]).map((secret) => `v1,${secret}`).join("|"),
  );
  const reached: SignedRun[] = [];
  const app = new Hono<SignedRequestEnv>()
    .use("*", signedRequestAuth({ keyring, logRejection: createRejectionLog(log, { now }), now }))
    .all("*", (c) => {
      reached.push(c.get("signedRun"));
      return c.json({ run_id: c.get("signedRun").runId }, 202);
    });
  return { app, reached, log };
}

type Setup = ReturnType<typeof setup>;

/** Sends the request and checks a refusal: status, generic body, the route not reached, no secret. */
async function assertRefused(ctx: Setup, request: Request, status: number) {
  const response = await assertGenericRefusal(await ctx.app.fetch(request), status);
  assert.deepEqual(ctx.reached, [], "the route (the only database work) is not reached");
  assertNoSecret(ctx.log.lines.join("\n"), "log");
  return response;
}

async function refusal(status: number, options: RequestOptions) {
  const ctx = setup();
  await assertRefused(ctx, signedRequest(options).request, status);
  return ctx;
}

// --- what passes ---

Deno.test("a signed request as the dispatcher sends it reaches the route with its signed run", async () => {
  const ctx = setup();
  const { request, claims } = signedRequest();
  const response = await ctx.app.fetch(request);
  assert.equal(response.status, 202);
  assert.deepEqual(ctx.reached, [{
    requestId: claims.run_id,
    runId: claims.run_id,
    userId: USER_ID,
  }]);
  assert.equal(ctx.log.lines.length, 0, "nothing refused, nothing logged");
});

Deno.test("a request signed during a key rotation is accepted", async () => {
  const ctx = setup({ secrets: [OTHER_SECRET, SECRET] });
  for (const signWith of [[SECRET], [OTHER_SECRET], [OTHER_SECRET, SECRET]]) {
    const response = await ctx.app.fetch(signedRequest({ signWith }).request);
    assert.equal(response.status, 202);
  }
  assert.equal(ctx.reached.length, 3);
});

Deno.test("a body of exactly 16 KiB is accepted", async () => {
  const ctx = setup();
  const base = signedRequest();
  const body = base.body + " ".repeat(MAX_BODY_BYTES - base.body.length);
  const { request } = signedRequest({ claims: base.claims, body });
  const response = await ctx.app.fetch(request);
  assert.equal(response.status, 202);
});

Deno.test("timestamps exactly 300 s from the clock pass the window", async () => {
  // 300 s ahead: accepted. 300 s behind: inside the window, but a request lives at
  // most 300 s, so its exp is now: refused as expired (403), not as unsigned (401).
  for (const [iat, status] of [[NOW + 300, 202], [NOW - 300, 403]]) {
    const ctx = setup();
    const response = await ctx.app.fetch(
      signedRequest({ claims: { iat, exp: iat + 300 } }).request,
    );
    assert.equal(response.status, status, `iat ${iat - NOW}`);
  }
});

Deno.test("a request claiming to live longer than 300 s is refused with 400", async () => {
  const ctx = setup();
  const response = await ctx.app.fetch(
    signedRequest({ claims: { iat: NOW, exp: NOW + 301 } }).request,
  );
  assert.equal(response.status, 400);
});

// --- refusals (the route, and so the database, never reached) ---

Deno.test("GET is refused with 405 and Allow: POST", async () => {
  for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
    const ctx = setup();
    const response = await assertRefused(ctx, signedRequest({ method }).request, 405);
    assert.equal(response.headers.get("allow"), "POST");
  }
});

Deno.test("a non-JSON content type is refused with 415", async () => {
  for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/jsonx"]) {
    await refusal(415, { headers: { "Content-Type": type } });
  }
  await refusal(415, { headers: { "Content-Type": null } });
});

Deno.test("a body over 16 KiB is refused with 413, with or without Content-Length", async () => {
  const base = signedRequest();
  const body = base.body + " ".repeat(MAX_BODY_BYTES + 1 - base.body.length);
  // Validly signed, with an honest Content-Length.
  await refusal(413, {
    claims: base.claims,
    body,
    headers: { "content-length": String(body.length) },
  });
  await refusal(413, { claims: base.claims, body }); // no Content-Length
  // A declared length over the limit is refused before reading.
  await refusal(413, { headers: { "content-length": String(10 * 1024 * 1024) } });

  const ctx = setup();
  const streamed = new Request(URL, {
    method: "POST",
    headers: signedRequest().request.headers,
    body: streamOf(10 * 1024 * 1024),
  });
  assert.equal(streamed.headers.get("content-length"), null);
  await assertRefused(ctx, streamed, 413);
});

Deno.test("a request missing a webhook header is refused with 401", async () => {
  for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
    await refusal(401, { headers: { [name]: null } });
  }
});

Deno.test("malformed webhook headers are refused with 401", async () => {
  await refusal(401, { headers: { "webhook-id": "run.1" } });
  await refusal(401, { headers: { "webhook-timestamp": `${NOW}.0` } });
  await refusal(401, { headers: { "webhook-timestamp": `+${NOW}` } });
  await refusal(401, { headers: { "webhook-signature": "v1,not-a-signature" } });
  await refusal(401, { headers: { "webhook-signature": "x".repeat(2000) } });
});

Deno.test("a timestamp outside ±300 s is refused with 401", async () => {
  for (const iat of [NOW - 301, NOW + 301, NOW - 86400]) {
    await refusal(401, { claims: { iat, exp: iat + 300 } });
  }
});

Deno.test("a bad signature is refused with 401", async () => {
  await refusal(401, { signWith: [OTHER_SECRET] }); // revoked or unknown key
  const base = signedRequest();
  // Signed body, then one claim changed in transit.
  const tampered = new Request(URL, {
    method: "POST",
    headers: base.request.headers,
    body: base.body.replace(USER_ID, "00000000-0000-4000-8000-000000000000"),
  });
  await assertRefused(setup(), tampered, 401);
  // Header timestamp moved without re-signing.
  const headers = new Headers(base.request.headers);
  headers.set("webhook-timestamp", String(NOW + 1));
  await assertRefused(setup(), new Request(URL, { method: "POST", headers, body: base.body }), 401);
});

Deno.test("claims failing the schema are refused with 400", async () => {
  await refusal(400, { body: "not json", id: crypto.randomUUID(), timestamp: NOW });
  await refusal(400, { claims: { sub: "not-a-uuid" } });
  await refusal(400, { claims: { admin: true } });
  await refusal(400, { claims: { exp: String(NOW + 300) } });
  await refusal(400, { claims: { iat: NOW + 0.5 }, timestamp: NOW });
});

Deno.test("a webhook-id different from run_id is refused with 400", async () => {
  await refusal(400, { id: crypto.randomUUID() });
});

Deno.test("iat different from webhook-timestamp is refused with 400", async () => {
  await refusal(400, { timestamp: NOW - 1 });
});

Deno.test("a wrong audience or scope is refused with 403", async () => {
  await refusal(403, { claims: { aud: "import-emails" } });
  await refusal(403, { claims: { scope: "admin" } });
});

Deno.test("an expired request is refused with 403", async () => {
  await refusal(403, { claims: { iat: NOW - 60, exp: NOW } });
  await refusal(403, { claims: { iat: NOW - 60, exp: NOW - 1 } });
});

Deno.test("checks run in order: method, type, size, headers, window, signature, claims", async () => {
  const big = " ".repeat(MAX_BODY_BYTES + 1);
  // Each request fails several checks; the earliest one answers.
  await refusal(405, {
    method: "DELETE",
    headers: { "Content-Type": "text/plain", "webhook-id": null },
  });
  await refusal(415, { body: big, headers: { "Content-Type": "text/plain", "webhook-id": null } });
  await refusal(413, { body: big, headers: { "webhook-id": null } });
  await refusal(401, {
    claims: { iat: NOW - 1000, aud: "x" },
    headers: { "webhook-id": "bad id" },
  });
  await refusal(401, { claims: { iat: NOW - 1000, exp: NOW - 900 }, signWith: [OTHER_SECRET] });
  await refusal(401, { body: "not json", id: crypto.randomUUID(), signWith: [OTHER_SECRET] });
  await refusal(400, { claims: { aud: "x", exp: NOW - 1 }, id: crypto.randomUUID() });
});

Deno.test("refusal bodies never carry the reason, which goes to the log", async () => {
  const ctx = setup();
  const response = await ctx.app.fetch(signedRequest({ claims: { aud: "import-emails" } }).request);
  const text = await response.text();
  assert.equal(text, '{"error":"forbidden"}');
  const logged = ctx.log.lines.map((line) => JSON.parse(line));
  assert.ok(
    logged.some((line) =>
      line.level === "warn" && line.status === 403 && /audience/.test(line.reason)
    ),
  );
});
