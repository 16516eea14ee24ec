/**
 * cron-auto-sync over real HTTP (gateway -> `deno serve` function -> Postgres):
 * every refusal code, in the documented order, with generic bodies; refusals
 * before the claims leave the run untouched; a valid request is accepted once.
 */
import assert from "node:assert/strict";
import {
  generateSecret,
  parseSecret,
  sign,
} from "../../functions-shared/wire/standard_webhooks.ts";
import { connect, createUser, stackSecrets, stateDir, waitFor } from "../support/local_stack.ts";
import {
  claimsFor,
  createDispatchedRun,
  nowSeconds,
  send,
  type SignedRequest,
  signInDatabase,
} from "../support/signed_requests.ts";

const sql = connect();

async function freshRequest(options: { iat?: number } = {}) {
  const userId = await createUser(sql, "http");
  const runId = await createDispatchedRun(sql, userId);
  const claims = claimsFor(userId, runId, options.iat);
  return { userId, runId, claims, request: await signInDatabase(sql, claims) };
}

async function runStatus(runId: string): Promise<string> {
  const [run] = await sql`select status from auto_sync.runs where id = ${runId}`;
  return run?.status;
}

async function expectRefusal(response: Response, status: number, error: string) {
  assert.equal(response.status, status);
  assert.deepEqual(await response.json(), { error });
}

/** A refusal before any database work: the run stays dispatched, its id unused. */
async function expectUntouched(runId: string, requestId: string) {
  assert.equal(await runStatus(runId), "dispatched");
  const used = await sql`select 1 from auto_sync.used_request_ids where request_id = ${requestId}`;
  assert.equal(used.length, 0);
}

Deno.test("a valid signed request is accepted with 202 and its run ends honestly as skipped", async () => {
  const { runId, request } = await freshRequest();
  const response = await send(request);
  assert.equal(response.status, 202);
  assert.deepEqual(await response.json(), { run_id: runId });
  const run = await waitFor(async () => {
    const [row] =
      await sql`select status, error, accepted_at, finished_at from auto_sync.runs where id = ${runId}`;
    return row.finished_at ? row : undefined;
  }, { timeoutMs: 10_000 });
  assert.equal(run.status, "skipped");
  assert.equal(run.error, "no mailbox configured");
  assert.ok(run.accepted_at);
});

Deno.test("405 for a method other than POST", async () => {
  const { runId, request } = await freshRequest();
  const response = await send(request, { method: "GET" });
  assert.equal(response.headers.get("allow"), "POST");
  await expectRefusal(response, 405, "method_not_allowed");
  await expectUntouched(runId, request.id);
});

Deno.test("415 for a body that is not declared JSON", async () => {
  const { runId, request } = await freshRequest();
  await expectRefusal(
    await send(request, { headers: { "content-type": "text/plain" } }),
    415,
    "unsupported_media_type",
  );
  await expectRefusal(
    await send(request, { headers: { "content-type": null } }),
    415,
    "unsupported_media_type",
  );
  await expectUntouched(runId, request.id);
});

Deno.test("413 for a body over 16 KiB, declared or streamed", async () => {
  const { runId, request } = await freshRequest();
  await expectRefusal(
    await send(request, { body: "x".repeat(16 * 1024 + 1) }),
    413,
    "payload_too_large",
  );
  // 10 MiB streamed in chunks, no Content-Length: refused without reading it all.
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= 10 * 1024 * 1024) return controller.close();
      pulled += 64 * 1024;
      controller.enqueue(new Uint8Array(64 * 1024));
    },
  });
  await expectRefusal(await send(request, { body: stream }), 413, "payload_too_large");
  await expectUntouched(runId, request.id);
});

Deno.test("401 for missing or malformed webhook headers", async () => {
  const { runId, request } = await freshRequest();
  for (const header of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
    await expectRefusal(await send(request, { headers: { [header]: null } }), 401, "unauthorized");
  }
  for (
    const timestamp of [
      `+${request.timestamp}`,
      `${request.timestamp}.0`,
      `0${request.timestamp}`,
      "abc",
      "",
    ]
  ) {
    await expectRefusal(
      await send(request, { headers: { "webhook-timestamp": timestamp } }),
      401,
      "unauthorized",
    );
  }
  await expectRefusal(
    await send(request, { headers: { "webhook-id": "has.dot" } }),
    401,
    "unauthorized",
  );
  await expectUntouched(runId, request.id);
});

Deno.test("401 for a timestamp outside ±300 s, even when correctly signed", async () => {
  // +303, not +301: a clock tick before the check must not bring it inside the window.
  for (const offset of [-301, 303]) {
    const { runId, request } = await freshRequest({ iat: nowSeconds() + offset });
    await expectRefusal(await send(request), 401, "unauthorized");
    await expectUntouched(runId, request.id);
  }
});

Deno.test("401 for a signature from no key of the keyring, or a changed signature", async () => {
  const { runId, claims, request } = await freshRequest();
  const foreign = sign([parseSecret(generateSecret())], {
    id: request.id,
    timestamp: Number(request.timestamp),
    payload: request.body,
  });
  await expectRefusal(
    await send(request, { headers: { "webhook-signature": foreign } }),
    401,
    "unauthorized",
  );
  const flipped = request.signature.slice(0, 10) + (request.signature[10] === "A" ? "B" : "A") +
    request.signature.slice(11);
  await expectRefusal(
    await send(request, { headers: { "webhook-signature": flipped } }),
    401,
    "unauthorized",
  );
  const otherBody = new TextEncoder().encode(
    JSON.stringify({ ...claims, sub: crypto.randomUUID() }),
  );
  await expectRefusal(await send(request, { body: otherBody }), 401, "unauthorized");
  await expectUntouched(runId, request.id);
});

Deno.test("400 for signed claims that fail the schema or disagree with the headers", async () => {
  const { runId, claims } = await freshRequest();
  const cases: SignedRequest[] = [
    await signInDatabase(sql, { ...claims, extra: true }),
    await signInDatabase(sql, { ...claims, sub: "not-a-uuid" }),
    await signInDatabase(sql, { ...claims, iat: String(claims.iat) }),
    await signInDatabase(sql, claims, { id: crypto.randomUUID() }), // webhook-id != run_id
  ];
  for (const request of cases) await expectRefusal(await send(request), 400, "bad_request");
  assert.equal(await runStatus(runId), "dispatched");
});

Deno.test("403 for another audience or scope, or an expired request", async () => {
  const { runId, claims } = await freshRequest();
  const iat = nowSeconds() - 100;
  const cases = [
    await signInDatabase(sql, { ...claims, aud: "import-emails" }),
    await signInDatabase(sql, { ...claims, scope: "admin" }),
    await signInDatabase(sql, { ...claims, iat, exp: iat + 60 }),
  ];
  for (const request of cases) await expectRefusal(await send(request), 403, "forbidden");
  assert.equal(await runStatus(runId), "dispatched");
});

Deno.test("409 for a replay: the same request is accepted once", async () => {
  const { runId, request } = await freshRequest();
  assert.equal((await send(request)).status, 202);
  await expectRefusal(await send(request), 409, "conflict");
  await waitFor(async () => (await runStatus(runId)) === "skipped" ? true : undefined, {
    timeoutMs: 10_000,
  });
});

Deno.test("50 concurrent copies of one request: exactly one is accepted", async () => {
  const { runId, request } = await freshRequest();
  const responses = await Promise.all(Array.from({ length: 50 }, () => send(request)));
  const statuses = responses.map((response) => response.status).sort();
  await Promise.all(responses.map((response) => response.body?.cancel()));
  assert.equal(statuses.filter((status) => status === 202).length, 1);
  assert.equal(statuses.filter((status) => status === 409).length, 49);
  const runs =
    await sql`select count(*)::int as n from auto_sync.runs where id = ${runId} and accepted_at is not null`;
  assert.equal(runs[0].n, 1);
});

Deno.test("404 for an unknown run or a run of another user", async () => {
  const userId = await createUser(sql, "http");
  const unknown = claimsFor(userId, crypto.randomUUID());
  await expectRefusal(await send(await signInDatabase(sql, unknown)), 404, "not_found");

  const { runId } = await freshRequest();
  const wrongUser = claimsFor(userId, runId);
  await expectRefusal(await send(await signInDatabase(sql, wrongUser)), 404, "not_found");
  assert.equal(await runStatus(runId), "dispatched");
});

Deno.test("409 when the schedule was disabled after dispatch; the run is marked rejected", async () => {
  const { userId, runId, request } = await freshRequest();
  await sql`select auto_sync.disable(${userId})`;
  await expectRefusal(await send(request), 409, "conflict");
  const [run] = await sql`select status, error from auto_sync.runs where id = ${runId}`;
  assert.equal(run.status, "rejected");
  assert.match(run.error, /disabled/);
});

Deno.test("no signing secret appears in the function logs", () => {
  const logs = Deno.readTextFileSync(`${stateDir}/gateway.log`);
  assert.ok(logs.includes("Rejected signed request"), "the refusals above were logged");
  for (const secret of stackSecrets()) {
    assert.equal(logs.includes(secret), false);
    assert.equal(logs.includes(secret.slice("whsec_".length)), false);
  }
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
