/**
 * Attack: JSON tricks in correctly signed bodies. The signature is right (made in
 * TypeScript over the exact bytes with the stack's key), so only the claims checks
 * stand between these bodies and an import. The SQL signer only ever produces
 * jsonb::text: unique keys, no BOM, no escapes it does not need.
 *
 * Expected outcomes, decided case by case:
 * - ambiguous bodies (a key twice) must be refused with 400, whichever value comes
 *   last: JSON.parse keeps the last, other parsers keep the first, and a verifier
 *   must not pick one meaning of a body that has two;
 * - bodies that are not one JSON object of exactly the six claims (trailing data,
 *   prototype keys, nesting, wrong types, non-integers, out-of-range numbers) → 400;
 * - other spellings of the same claims (\u escapes that decode to the right value,
 *   an upper-case UUID, a UTF-8 BOM, white space, 1.7e9 for an integer) mean the
 *   same thing to every JSON parser and only the key holder can make them; they
 *   are accepted (202) for the right run and user, or refused with 400, never
 *   misattributed. What each did is printed.
 */
import assert from "node:assert/strict";
import { connect } from "../support/local_stack.ts";
import type { Claims } from "../support/signed_requests.ts";
import {
  assertNoSecretIn,
  assertUntouched,
  collectedBodies,
  Fixtures,
  post,
  runStatus,
  signClaims,
  signRaw,
  waitFinished,
} from "../support/attack_support.ts";

const sql = connect();
const fixtures = new Fixtures(sql);
const observed: string[] = [];

/** The claims as JSON members, in order, with each value already in JSON text. */
function members(claims: Claims): [string, string][] {
  return [
    ["aud", JSON.stringify(claims.aud)],
    ["exp", String(claims.exp)],
    ["iat", String(claims.iat)],
    ["sub", JSON.stringify(claims.sub)],
    ["scope", JSON.stringify(claims.scope)],
    ["run_id", JSON.stringify(claims.run_id)],
  ];
}

const objectText = (entries: [string, string][]) =>
  `{${entries.map(([key, value]) => `${JSON.stringify(key)}: ${value}`).join(", ")}}`;

/** Builds the body from the honest members; `edit` may replace, drop or add members. */
function bodyWith(claims: Claims, edit: (entries: [string, string][]) => [string, string][]) {
  return objectText(edit(members(claims)));
}

const replace = (key: string, value: string) => (entries: [string, string][]) =>
  entries.map(([name, text]): [string, string] => name === key ? [name, value] : [name, text]);

async function send(
  label: string,
  claims: Claims,
  body: string | Uint8Array,
  options: { id?: string } = {},
) {
  const request = signRaw(options.id ?? claims.run_id, String(claims.iat), body);
  const answer = await post(request);
  observed.push(`${String(answer.status).padEnd(4)} ${label}`);
  return answer;
}

Deno.test("duplicate keys are refused (400) whichever value comes last, and never accepted", async () => {
  const duplicates: Record<
    string,
    (claims: Claims, other: { userId: string; runId: string }) => string
  > = {
    'aud: "x" then the right one': (c) => bodyWith(c, (e) => [["aud", '"x"'], ...e]),
    'aud: the right one then "x"': (c) => bodyWith(c, (e) => [...e, ["aud", '"x"']]),
    'scope: "admin" then the right one': (c) => bodyWith(c, (e) => [["scope", '"admin"'], ...e]),
    "sub: another user then the run's user": (c, o) =>
      bodyWith(c, (e) => [["sub", JSON.stringify(o.userId)], ...e]),
    "run_id: another run then this run": (c, o) =>
      bodyWith(c, (e) => [["run_id", JSON.stringify(o.runId)], ...e]),
    "exp: already expired then the right one": (c) =>
      bodyWith(c, (e) => [["exp", String(c.iat - 400)], ...e]),
    "the whole claims object twice, the right one last": (c) =>
      bodyWith(c, (e) => [...e.map(([k]): [string, string] => [k, '"x"']), ...e]),
  };
  const failures: string[] = [];
  for (const [label, build] of Object.entries(duplicates)) {
    const other = await fixtures.run();
    const { runId, claims } = await fixtures.run();
    const answer = await send(`duplicate key, ${label}`, claims, build(claims, other));
    if (answer.status !== 400) failures.push(`${label}: ${answer.status} ${answer.text}`);
    if (answer.status === 202) await waitFinished(sql, runId);
    else assert.equal(await runStatus(sql, runId), "dispatched");
    assert.equal(await runStatus(sql, other.runId), "dispatched");
  }
  assert.deepEqual(failures, [], "bodies with a duplicated key must be refused with 400");
});

Deno.test("bodies that are not exactly the six claims are refused (400) and leave the run untouched", async () => {
  const { runId, claims } = await fixtures.run();
  const honest = bodyWith(claims, (e) => e);
  const without = (key: string) => (entries: [string, string][]) =>
    entries.filter(([name]) => name !== key);
  const bodies: Record<string, string | Uint8Array> = {
    "trailing garbage": `${honest}x`,
    "a second object after it": `${honest}${honest}`,
    "trailing comma inside": honest.replace(/}$/, ",}"),
    "trailing NUL": `${honest}\u0000`,
    "JSON inside a string": JSON.stringify(honest),
    "array of the claims": `[${honest}]`,
    "claims nested under a key": `{"claims": ${honest}}`,
    "__proto__ member added": bodyWith(claims, (e) => [...e, ["__proto__", "{}"]]),
    "aud only in a __proto__ member": bodyWith(
      claims,
      (e) => [...without("aud")(e), ["__proto__", '{"aud": "cron-auto-sync"}']],
    ),
    "constructor member added": bodyWith(
      claims,
      (e) => [...e, ["constructor", '{"prototype": {}}']],
    ),
    "prototype member added": bodyWith(claims, (e) => [...e, ["prototype", "{}"]]),
    "toString member added": bodyWith(claims, (e) => [...e, ["toString", '"x"']]),
    "aud nested object": bodyWith(claims, replace("aud", '{"aud": "cron-auto-sync"}')),
    "aud array": bodyWith(claims, replace("aud", '["cron-auto-sync"]')),
    "sub nested object": bodyWith(claims, replace("sub", `{"id": ${JSON.stringify(claims.sub)}}`)),
    "sub with braces": bodyWith(claims, replace("sub", JSON.stringify(`{${claims.sub}}`))),
    "sub without dashes": bodyWith(
      claims,
      replace("sub", JSON.stringify(claims.sub.replaceAll("-", ""))),
    ),
    "sub urn:uuid:": bodyWith(claims, replace("sub", JSON.stringify(`urn:uuid:${claims.sub}`))),
    "iat as a string": bodyWith(claims, replace("iat", JSON.stringify(String(claims.iat)))),
    "iat a float": bodyWith(claims, replace("iat", `${claims.iat}.5`)),
    "iat as -0": bodyWith(claims, replace("iat", "-0")),
    "exp as -0": bodyWith(claims, replace("exp", "-0")),
    "exp negative": bodyWith(claims, replace("exp", "-1")),
    "exp 1e400 (Infinity)": bodyWith(claims, replace("exp", "1e400")),
    "exp 2^53 + 1": bodyWith(claims, replace("exp", "9007199254740993")),
    "exp 2^64": bodyWith(claims, replace("exp", "18446744073709551616")),
    "exp 1e3 (before iat)": bodyWith(claims, replace("exp", "1e3")),
    "exp null": bodyWith(claims, replace("exp", "null")),
    "exp true": bodyWith(claims, replace("exp", "true")),
    "exp missing": bodyWith(claims, without("exp")),
    "NaN (not JSON)": bodyWith(claims, replace("exp", "NaN")),
    "single quotes (not JSON)": honest.replaceAll('"', "'"),
    "comment (not JSON)": `/* */${honest}`,
    "UTF-16 encoded": new Uint8Array(
      new Uint16Array([...honest].map((char) => char.charCodeAt(0))).buffer,
    ),
    "invalid UTF-8 in a string": new Uint8Array([
      ...new TextEncoder().encode(honest.slice(0, -1)),
      0x2c,
      0x22,
      0x78,
      0xff,
      0x22,
      0x3a,
      0x31,
      0x7d,
    ]),
    "overlong UTF-8 for a quote": new Uint8Array([
      ...new TextEncoder().encode(honest.slice(0, -2)),
      0xc0,
      0xa2,
      0x7d,
    ]),
    "empty body": "",
    "null": "null",
    "deep nesting (8000 levels)": "[".repeat(8000) + "]".repeat(8000),
    "1500 unknown members": `{${Array.from({ length: 1500 }, (_, i) => `"k${i}":0`).join(",")}}`,
  };
  const failures: string[] = [];
  for (const [label, body] of Object.entries(bodies)) {
    const answer = await send(label, claims, body);
    if (answer.status !== 400) failures.push(`${label}: ${answer.status} ${answer.text}`);
  }
  assert.deepEqual(failures, []);
  await assertUntouched(sql, runId);

  // The function survived all of it: the honest body for the same run is accepted.
  const accepted = await post(signClaims(claims, { body: honest }));
  assert.equal(accepted.status, 202, accepted.text);
  assert.equal(await waitFinished(sql, runId), "skipped");
});

Deno.test("other spellings of the same claims are accepted for the right run and user, or refused with 400; never misattributed", async () => {
  const uuidEscape = (uuid: string) => JSON.stringify(uuid).replaceAll("-", "\\u002d");
  const spellings: Record<string, (claims: Claims) => string | Uint8Array> = {
    'aud "cron\\u002dauto-sync"': (c) => bodyWith(c, replace("aud", '"cron\\u002dauto-sync"')),
    "every character of aud \\u-escaped": (c) =>
      bodyWith(
        c,
        replace(
          "aud",
          `"${
            [...c.aud].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`).join("")
          }"`,
        ),
      ),
    "key names \\u-escaped": (c) =>
      bodyWith(c, (e) => e).replace('"aud"', '"\\u0061ud"').replace('"sub"', '"s\\u0075b"'),
    "sub upper-case": (c) => bodyWith(c, replace("sub", JSON.stringify(c.sub.toUpperCase()))),
    "sub with \\u002d for dashes": (c) => bodyWith(c, replace("sub", uuidEscape(c.sub))),
    "run_id with \\u002d for dashes": (c) => bodyWith(c, replace("run_id", uuidEscape(c.run_id))),
    "UTF-8 BOM before the JSON": (c) =>
      new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(bodyWith(c, (e) => e))]),
    "white space around and inside": (c) =>
      `\n\t ${bodyWith(c, (e) => e).replaceAll(": ", " :\t").replaceAll(", ", " ,\r\n ")} \n`,
    "compact (JSON.stringify)": (c) => JSON.stringify(c),
    "keys in another order": (c) => bodyWith(c, (e) => [...e].reverse()),
    "iat and exp in exponent form": (c) =>
      bodyWith(c, (e) => replace("iat", `${c.iat / 1e9}e9`)(replace("exp", `${c.exp}E0`)(e))),
    "iat and exp with .0": (c) =>
      bodyWith(c, (e) => replace("iat", `${c.iat}.0`)(replace("exp", `${c.exp}.000`)(e))),
  };
  const failures: string[] = [];
  for (const [label, build] of Object.entries(spellings)) {
    const { userId, runId, claims } = await fixtures.run();
    const answer = await send(label, claims, build(claims));
    if (answer.status === 202) {
      assert.deepEqual(JSON.parse(answer.text), { run_id: runId });
      const [run] =
        await sql`select user_id, status, accepted_at from auto_sync.runs where id = ${runId}`;
      assert.equal(run.user_id, userId);
      assert.ok(run.accepted_at);
      await waitFinished(sql, runId);
    } else if (answer.status === 400) {
      await assertUntouched(sql, runId);
    } else {
      failures.push(`${label}: ${answer.status} ${answer.text}`);
    }
  }
  assert.deepEqual(failures, []);
});

Deno.test("a far-future exp does not stretch a request's life past the ±300 s timestamp window (401)", async () => {
  const { runId, claims } = await fixtures.run();
  const iat = claims.iat - 301;
  const stale = { ...claims, iat, exp: 2 ** 40 };
  const answer = await send("exp 2^40 with iat 301 s ago", stale, bodyWith(stale, (e) => e));
  assert.equal(answer.status, 401, answer.text);
  await assertUntouched(sql, runId);
});

Deno.test("an upper-case webhook-id and run_id for the same run: accepted once, the lower-case spelling is then refused (409)", async () => {
  const { runId, claims } = await fixtures.run();
  const upper = { ...claims, run_id: runId.toUpperCase() };
  const first = await send("upper-case webhook-id and run_id", upper, JSON.stringify(upper), {
    id: upper.run_id,
  });
  if (first.status === 202) {
    // The replay ledger is keyed by the id's text, but the run itself is now accepted,
    // so a second spelling of the same run cannot be accepted again.
    const second = await send(
      "then lower-case webhook-id and run_id",
      claims,
      JSON.stringify(claims),
    );
    assert.equal(second.status, 409, second.text);
    assert.equal(await waitFinished(sql, runId), "skipped");
    const [accepted] =
      await sql`select count(*)::int as n from auto_sync.runs where id = ${runId} and accepted_at is not null`;
    assert.equal(accepted.n, 1);
  } else {
    assert.equal(first.status, 400, first.text);
    await assertUntouched(sql, runId, [runId, upper.run_id]);
  }
});

Deno.test("no signing secret in any response body of this file", () => {
  console.log(
    `JSON tricks (${observed.length} requests), status and case:\n${observed.join("\n")}`,
  );
  assertNoSecretIn(collectedBodies, "JSON trick responses");
});

fixtures.cleanUpLast();
