/**
 * Attack: replaying signed requests. A request that pg_net's worker actually sent
 * (queued by SQL exactly as auto_sync.dispatch() queues it, captured from the real
 * net.http_request_queue inside the queuing transaction, then delivered by pg_net's
 * worker) is replayed one copy after another; a fresh request is
 * sent as 50 concurrent copies split over the gateway and the function's own port,
 * in several spellings that mean the same request. Exactly one 202 each time.
 */
import assert from "node:assert/strict";
import { connect, waitFor } from "../support/local_stack.ts";
import { queueLikeDispatch } from "../support/sent_requests.ts";
import {
  assertNoSecretIn,
  collectedBodies,
  DIRECT,
  Fixtures,
  GATEWAY,
  post,
  rawExchange,
  rawRequest,
  signClaims,
  waitFinished,
} from "../support/attack_support.ts";

const sql = connect();
const fixtures = new Fixtures(sql);

Deno.test("a request pg_net actually sent, replayed 5 times one after another: one 202 (pg_net's), five 409", async () => {
  const { userId, runId } = await fixtures.run();
  const { netId, captured } = await queueLikeDispatch(sql, { userId, runId });
  assert.equal(captured.id, runId);

  const delivered = await waitFor(async () => {
    const [row] =
      await sql`select status_code, content from net._http_response where id = ${netId}::bigint`;
    return row;
  }, { timeoutMs: 15_000 });
  assert.equal(delivered.status_code, 202, delivered.content);
  assert.deepEqual(JSON.parse(delivered.content), { run_id: runId });
  const finished = await waitFinished(sql, runId);
  assert.equal(finished, "skipped");
  const [before] =
    await sql`select status, accepted_at, finished_at from auto_sync.runs where id = ${runId}`;

  const statuses: number[] = [];
  for (let copy = 0; copy < 5; copy++) {
    const target = copy % 2 === 0 ? GATEWAY : DIRECT;
    const answer = await post(captured, { target });
    statuses.push(answer.status);
    assert.deepEqual(JSON.parse(answer.text), { error: "conflict" });
  }
  assert.deepEqual(statuses, [409, 409, 409, 409, 409]);

  const [after] =
    await sql`select status, accepted_at, finished_at from auto_sync.runs where id = ${runId}`;
  assert.deepEqual(after, before, "replays change nothing about the run");
  const [ledger] =
    await sql`select count(*)::int as n from auto_sync.used_request_ids where request_id = ${runId}`;
  assert.equal(ledger.n, 1);
});

Deno.test("50 concurrent copies, in equivalent spellings, over both ports and raw sockets: exactly one 202", async () => {
  const { runId, claims } = await fixtures.run();
  const request = signClaims(claims);
  // Spellings that are all the same request to an HTTP server: header-name case,
  // optional whitespace around values, an extra empty signature entry.
  const spellings = [
    () => rawExchange(GATEWAY, rawRequest(GATEWAY, request)),
    () => rawExchange(DIRECT, rawRequest(DIRECT, request)),
    () =>
      rawExchange(
        GATEWAY,
        rawRequest(GATEWAY, request)
          .replace("webhook-id:", "WEBHOOK-ID:")
          .replace("webhook-signature: ", "Webhook-Signature:\t"),
      ),
    () =>
      rawExchange(
        DIRECT,
        rawRequest(DIRECT, { ...request, signature: `v1, ${request.signature}` }),
      ),
    () => post(request, { target: GATEWAY }),
    () => post(request, { target: DIRECT }),
  ];
  const sends = Array.from({ length: 50 }, (_, index) => spellings[index % spellings.length]);
  const results = await Promise.all(sends.map((send) => send()));
  const statuses = results.map((result) =>
    "status" in result ? result.status : result.responses[0]?.status ?? 0
  );

  assert.equal(
    statuses.filter((status) => status === 202).length,
    1,
    `statuses: ${statuses.join(" ")}`,
  );
  assert.equal(
    statuses.filter((status) => status === 409).length,
    49,
    `statuses: ${statuses.join(" ")}`,
  );
  assert.equal(await waitFinished(sql, runId), "skipped");
  const [ledger] =
    await sql`select count(*)::int as n from auto_sync.used_request_ids where request_id = ${runId}`;
  assert.equal(ledger.n, 1);
});

Deno.test("replays after the run finished, and a burst of 20 more, are all refused (409)", async () => {
  const { runId, claims } = await fixtures.run();
  const request = signClaims(claims);
  assert.equal((await post(request)).status, 202);
  assert.equal(await waitFinished(sql, runId), "skipped");
  const answers = await Promise.all(
    Array.from(
      { length: 20 },
      (_, index) => post(request, { target: index % 2 ? DIRECT : GATEWAY }),
    ),
  );
  assert.deepEqual([...new Set(answers.map((answer) => answer.status))], [409]);
  assert.equal(
    (await sql`select status from auto_sync.runs where id = ${runId}`)[0].status,
    "skipped",
  );
});

Deno.test("no signing secret in any response body of this file", () => {
  assert.ok(collectedBodies.length >= 75);
  assertNoSecretIn(collectedBodies, "replay responses");
});

fixtures.cleanUpLast();
