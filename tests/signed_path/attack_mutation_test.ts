/**
 * Attack: every single-byte mutation of a valid signed request.
 *
 * For each byte of the webhook-id, webhook-timestamp and webhook-signature header
 * values and of the body, the byte is replaced by a few other values (+1, a base64
 * character, a space; for the body also the byte with its high bit flipped, which
 * breaks UTF-8) and the request is sent over real HTTP, through the gateway and
 * straight to the function's own `deno serve`. Every one must be refused with 401
 * before any database work; then the untouched original must still be accepted
 * (202): no mutation consumed the run or its id.
 */
import assert from "node:assert/strict";
import { connect } from "../support/local_stack.ts";
import { type SignedRequest, signInDatabase } from "../support/signed_requests.ts";
import {
  assertNoSecretIn,
  assertUntouched,
  collectedBodies,
  Fixtures,
  mapLimit,
  post,
  signRaw,
  TARGETS,
  waitFinished,
} from "../support/attack_support.ts";

const sql = connect();
const fixtures = new Fixtures(sql);

type Part = "webhook-id" | "webhook-timestamp" | "webhook-signature" | "body";

interface Mutation {
  part: Part;
  position: number;
  from: number;
  to: number;
  request: SignedRequest;
}

/** Header values: visible ASCII or space only (fetch refuses NUL, CR, LF and non-Latin-1). */
const legalInHeader = (byte: number) => byte === 0x20 || (byte >= 0x21 && byte <= 0x7e);

function headerMutations(part: Exclude<Part, "body">, original: SignedRequest): Mutation[] {
  const key = part === "webhook-id"
    ? "id"
    : part === "webhook-timestamp"
    ? "timestamp"
    : "signature";
  const value = original[key];
  const mutations: Mutation[] = [];
  for (let position = 0; position < value.length; position++) {
    const from = value.charCodeAt(position);
    const alternatives = new Set([from + 1, from === 0x41 ? 0x42 : 0x41, 0x20]);
    for (const to of alternatives) {
      if (to === from || !legalInHeader(to)) continue;
      const mutated = value.slice(0, position) + String.fromCharCode(to) +
        value.slice(position + 1);
      mutations.push({ part, position, from, to, request: { ...original, [key]: mutated } });
    }
  }
  return mutations;
}

function bodyMutations(original: SignedRequest): Mutation[] {
  const mutations: Mutation[] = [];
  for (let position = 0; position < original.body.byteLength; position++) {
    const from = original.body[position];
    const alternatives = new Set([
      (from + 1) & 0xff,
      from === 0x41 ? 0x42 : 0x41,
      0x20,
      from ^ 0x80,
    ]);
    for (const to of alternatives) {
      if (to === from) continue;
      const body = new Uint8Array(original.body);
      body[position] = to;
      mutations.push({ part: "body", position, from, to, request: { ...original, body } });
    }
  }
  return mutations;
}

Deno.test("every single-byte mutation of id, timestamp, signature or body is refused (401) and does not consume the run", async () => {
  const { runId, claims } = await fixtures.run();
  // The body exactly as pg_net sends it (jsonb::text from the SQL signer), signed
  // with one key only, so that changing any byte of the signature must break it.
  const fromDatabase = await signInDatabase(sql, claims);
  const original = signRaw(fromDatabase.id, fromDatabase.timestamp, fromDatabase.body);
  assert.equal(original.signature.split(" ").length, 1);

  const mutations = [
    ...headerMutations("webhook-id", original),
    ...headerMutations("webhook-timestamp", original),
    ...headerMutations("webhook-signature", original),
    ...bodyMutations(original),
  ];
  const started = Date.now();
  // Through the gateway and straight to the function's own `deno serve`.
  const sends = TARGETS.flatMap((target) => mutations.map((mutation) => ({ target, mutation })));
  const answers = await mapLimit(
    sends,
    16,
    ({ target, mutation }) => post(mutation.request, { target }),
  );

  const perPart = new Map<Part, number>();
  for (const mutation of mutations) {
    perPart.set(mutation.part, (perPart.get(mutation.part) ?? 0) + 1);
  }
  console.log(
    `single-byte mutations: ${mutations.length} (${
      [...perPart].map(([part, n]) => `${part} ${n}`).join(", ")
    })` +
      ` x ${TARGETS.length} targets = ${sends.length} requests in ${Date.now() - started} ms`,
  );

  const notRefused = sends
    .map((send, index) => ({ ...send, answer: answers[index] }))
    .filter(({ answer }) =>
      answer.status !== 401 || JSON.parse(answer.text).error !== "unauthorized"
    )
    .map(({ target, mutation, answer }) =>
      `${target.name} ${mutation.part}[${mutation.position}] 0x${mutation.from.toString(16)} -> ` +
      `0x${mutation.to.toString(16)}: ${answer.status} ${answer.text}`
    );
  assert.deepEqual(
    notRefused,
    [],
    `${notRefused.length} of ${sends.length} mutated requests were not refused with 401`,
  );

  // None of them reached the database: the run is dispatched, no (mutated) id burned.
  const mutatedIds = [...new Set(mutations.map((mutation) => mutation.request.id))];
  await assertUntouched(sql, runId, mutatedIds);

  // The original, sent last, is still good: nothing above consumed the run.
  const accepted = await post(original);
  assert.equal(accepted.status, 202, accepted.text);
  assert.deepEqual(JSON.parse(accepted.text), { run_id: runId });
  assert.equal(await waitFinished(sql, runId), "skipped");
});

Deno.test("no signing secret in any response body of this file", () => {
  assert.ok(collectedBodies.length > 2000);
  assertNoSecretIn(collectedBodies, "mutation responses");
});

fixtures.cleanUpLast();
