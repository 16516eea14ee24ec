/**
 * Attack: webhook-timestamp values outside the window or in another spelling, each
 * correctly signed over that exact timestamp string with the stack's key (so only
 * the timestamp rules can refuse them), with the body's iat set to the same number
 * where one exists. Every one must be refused with 401 and leave the run untouched;
 * the honest request for the same run is accepted afterwards.
 */
import assert from "node:assert/strict";
import { sign } from "../../functions-shared/wire/standard_webhooks.ts";
import { connect, stackKeyring } from "../support/local_stack.ts";
import { nowSeconds } from "../support/signed_requests.ts";
import {
  assertNoSecretIn,
  assertUntouched,
  collectedBodies,
  encoder,
  Fixtures,
  post,
  rawExchange,
  rawRequest,
  signClaims,
  signRaw,
  TARGETS,
  waitFinished,
} from "../support/attack_support.ts";

const sql = connect();
const fixtures = new Fixtures(sql);

Deno.test("timestamps outside ±300 s are refused (401) even when signed with sign() over that number", async () => {
  const { runId, claims } = await fixtures.run();
  const now = nowSeconds();
  // Future offsets keep a margin: a clock tick before the check must not bring them inside.
  const offsets = [-301, 303, -302, 305, -3600, 3600, -86_400, 86_400, -365 * 86_400, 365 * 86_400];
  const absolutes = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 999_999_999_999]; // epoch, 2038, 2106, the 12-digit maximum
  const timestamps = [...offsets.map((offset) => now + offset), ...absolutes];
  let cases = 0;
  for (const timestamp of timestamps) {
    const body = encoder.encode(
      JSON.stringify({ ...claims, iat: timestamp, exp: timestamp + 300 }),
    );
    const signature = sign(stackKeyring(), { id: runId, timestamp, payload: body });
    for (const target of TARGETS) {
      const answer = await post({ id: runId, timestamp: String(timestamp), signature, body }, {
        target,
      });
      assert.equal(
        answer.status,
        401,
        `timestamp ${timestamp} (now ${timestamp >= now ? "+" : ""}${
          timestamp - now
        }) via ${target.name}: ${answer.text}`,
      );
      assert.deepEqual(JSON.parse(answer.text), { error: "unauthorized" });
      cases++;
    }
  }
  console.log(`out-of-window timestamps: ${cases} requests refused`);
  await assertUntouched(sql, runId);
});

/**
 * Other spellings of a time inside the window. The body keeps the honest iat, so
 * the claims would pass if the timestamp spelling were accepted.
 */
function spellings(now: number): string[] {
  const text = String(now);
  return [
    `+${text}`,
    `-${text}`,
    `${text}.0`,
    `${text}.`,
    `${text}.5`,
    `0${text}`,
    `00${text}`,
    `${"0".repeat(20)}${text}`,
    `${text}e0`,
    `${now / 1e9}e9`,
    "1e9",
    "1E9",
    `0x${now.toString(16)}`,
    `0X${now.toString(16).toUpperCase()}`,
    `0o${now.toString(8)}`,
    `0b${now.toString(2)}`,
    `${text.slice(0, 4)}_${text.slice(4)}`,
    `${text.slice(0, 4)},${text.slice(4)}`,
    `${text.slice(0, 4)} ${text.slice(4)}`,
    `${text.slice(0, 4)}\t${text.slice(4)}`,
    "",
    "0",
    "-0",
    "00",
    "NaN",
    "Infinity",
    "-Infinity",
    "null",
    "undefined",
    "true",
    `"${text}"`,
    `[${text}]`,
    "1".padEnd(13, "0"),
    "9".repeat(13),
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "9".repeat(400),
    `${text}${"0".repeat(3)}`, // milliseconds instead of seconds
    `${now - 1}`.padStart(text.length + 1, "0"),
    `${text}\u00a0`,
    `\u00a0${text}`,
    `${text}\u00b2`,
  ];
}

Deno.test("timestamps in any other spelling (signs, decimals, zeros, exponents, hex, huge, whitespace) are refused (401)", async () => {
  const { runId, claims } = await fixtures.run();
  const body = JSON.stringify(claims);
  const now = nowSeconds();
  let cases = 0;
  for (const timestamp of spellings(now)) {
    const request = signRaw(runId, timestamp, body);
    // fetch() would strip leading and trailing whitespace and refuses some bytes;
    // a raw socket sends the exact spelling.
    for (const target of TARGETS) {
      const exchange = await rawExchange(target, rawRequest(target, request));
      const status = exchange.responses[0]?.status;
      assert.equal(
        status,
        401,
        `timestamp ${JSON.stringify(timestamp)} via ${target.name}: ${exchange.raw.slice(0, 200)}`,
      );
      cases++;
    }
  }
  // Leading and trailing whitespace never reaches the function (optional whitespace
  // around a field value is not part of it, RFC 9110 5.5); signed over the padded
  // text it must fail too.
  for (const timestamp of [` ${now}`, `${now} `, `\t${now}`, `${now}\t`, `  ${now}  `]) {
    const request = signRaw(runId, timestamp, body);
    for (const target of TARGETS) {
      const exchange = await rawExchange(target, rawRequest(target, request));
      assert.equal(
        exchange.responses[0]?.status,
        401,
        `timestamp ${JSON.stringify(timestamp)} via ${target.name}`,
      );
      cases++;
    }
  }
  console.log(`timestamp spellings: ${cases} requests refused`);
  await assertUntouched(sql, runId);

  // The same run with the honest timestamp is accepted: nothing above consumed it.
  const honest = await post(signClaims(claims));
  assert.equal(honest.status, 202, honest.text);
  assert.equal(await waitFinished(sql, runId), "skipped");
});

Deno.test("near the window edges: ±297 s is accepted, ±303 s refused (a run each)", async () => {
  // Real clocks on both sides: keep a few seconds from ±300 so a tick between signing
  // and checking cannot flip the outcome. The exact ±300/±301 boundary is tested with
  // an injected clock in functions-shared/wire/standard_webhooks_test.ts.
  for (const [offset, expected] of [[-297, 202], [297, 202], [-303, 401], [303, 401]] as const) {
    const { runId, claims } = await fixtures.run();
    const iat = nowSeconds() + offset;
    const answer = await post(signClaims({ ...claims, iat, exp: iat + 300 }));
    assert.equal(answer.status, expected, `offset ${offset}: ${answer.text}`);
    if (expected === 202) assert.equal(await waitFinished(sql, runId), "skipped");
    else await assertUntouched(sql, runId);
  }
});

Deno.test("no signing secret in any response body of this file", () => {
  assertNoSecretIn(collectedBodies, "timestamp responses");
});

fixtures.cleanUpLast();
