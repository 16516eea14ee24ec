import assert from "node:assert/strict";
import { Hono } from "hono";
import { cors, CORS_HEADERS } from "./cors.ts";

function app() {
  let reached = 0;
  const hono = new Hono();
  hono.use("*", cors());
  hono.all("*", (c) => {
    reached++;
    return c.text("refused", 401);
  });
  return { hono, reached: () => reached };
}

Deno.test("a preflight is answered 204 by the middleware itself, with the CORS headers", async () => {
  const { hono, reached } = app();
  const response = await hono.fetch(new Request("http://x/", { method: "OPTIONS" }));
  assert.equal(response.status, 204);
  for (const [name, value] of Object.entries(CORS_HEADERS)) {
    assert.equal(response.headers.get(name), value);
  }
  assert.equal(reached(), 0, "the handler (and its authentication) never runs for a preflight");
});

Deno.test("every other answer, a refusal included, carries the CORS headers", async () => {
  const { hono, reached } = app();
  const response = await hono.fetch(new Request("http://x/", { method: "POST" }));
  assert.equal(response.status, 401);
  assert.equal(response.headers.get("access-control-allow-origin"), "*");
  assert.equal(reached(), 1);
});
