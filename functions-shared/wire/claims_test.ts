import assert from "node:assert/strict";
import { AUDIENCE, checkClaims, hasDuplicateTopLevelKey, SCOPE } from "./claims.ts";

const NOW = 1_800_000_000;
const RUN_ID = "0b7d3c1e-5f2a-4c9b-8e61-3a2f9d4c7b10";
const USER_ID = "6a1f2e3d-4c5b-4a69-8b7c-1d2e3f4a5b6c";

function validClaims(): Record<string, unknown> {
  return { aud: AUDIENCE, scope: SCOPE, sub: USER_ID, run_id: RUN_ID, iat: NOW, exp: NOW + 300 };
}

/** What Postgres' jsonb::text produces: keys by length then bytes, ": " and ", ". */
function jsonbText(value: Record<string, unknown>): string {
  const keys = Object.keys(value).sort((a, b) =>
    a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)
  );
  return `{${
    keys.map((key) => `${JSON.stringify(key)}: ${JSON.stringify(value[key])}`).join(", ")
  }}`;
}

/** checkClaims on `claims` (encoded as jsonb::text), with the headers matching the valid claims. */
function check(
  claims: Record<string, unknown> | Uint8Array | string,
  expected: { requestId?: string; timestamp?: number; nowSeconds?: number } = {},
) {
  const body = claims instanceof Uint8Array
    ? claims
    : new TextEncoder().encode(typeof claims === "string" ? claims : jsonbText(claims));
  return checkClaims(body, {
    requestId: expected.requestId ?? RUN_ID,
    timestamp: expected.timestamp ?? NOW,
    nowSeconds: expected.nowSeconds ?? NOW,
  });
}

function withClaims(changes: Record<string, unknown>): Record<string, unknown> {
  return { ...validClaims(), ...changes };
}

function without(field: string): Record<string, unknown> {
  const claims = validClaims();
  delete claims[field];
  return claims;
}

function assertStatus(result: ReturnType<typeof check>, status: 400 | 403, label = "") {
  assert.equal(result.ok, false, label);
  if (!result.ok) assert.equal(result.status, status, `${label}: ${result.reason}`);
}

Deno.test("valid claims as the dispatcher sends them pass", () => {
  const result = check(validClaims());
  assert.deepEqual(result, { ok: true, claims: validClaims() });
});

Deno.test("compact JSON and a body with surrounding whitespace pass too", () => {
  assert.equal(check(JSON.stringify(validClaims())).ok, true);
  assert.equal(check(`\n ${JSON.stringify(validClaims())} \n`).ok, true);
});

Deno.test("a body that is not JSON is rejected with 400", () => {
  for (
    const body of [
      "",
      "not json",
      "{",
      `${JSON.stringify(validClaims())}}`,
      "null",
      "[]",
      "42",
      '"text"',
    ]
  ) {
    assertStatus(check(body), 400, JSON.stringify(body));
  }
});

Deno.test("a body that is not valid UTF-8 is rejected with 400", () => {
  // Invalid byte inside the audience: a lenient decoder would turn it into U+FFFD
  // and answer 403 (wrong audience); the strict one refuses the body outright.
  const text = jsonbText(validClaims());
  const at = text.indexOf(AUDIENCE) + AUDIENCE.length;
  const encoded = new TextEncoder().encode(text);
  const body = new Uint8Array([...encoded.slice(0, at), 0xff, ...encoded.slice(at)]);
  assertStatus(check(body), 400);
  // A truncated multi-byte sequence, too.
  const truncated = new Uint8Array([...encoded.slice(0, at), 0xe6, 0x97, ...encoded.slice(at)]);
  assertStatus(check(truncated), 400);
});

Deno.test("a body missing any claim is rejected with 400", () => {
  for (const field of Object.keys(validClaims())) {
    assertStatus(check(without(field)), 400, field);
  }
});

Deno.test("a body with an extra claim is rejected with 400", () => {
  assertStatus(check(withClaims({ admin: true })), 400);
  assertStatus(check(withClaims({ user_id: USER_ID })), 400);
});

Deno.test("non-uuid sub or run_id is rejected with 400", () => {
  for (const sub of ["not-a-uuid", "", "6a1f2e3d4c5b4a698b7c1d2e3f4a5b6c", 42, null]) {
    assertStatus(check(withClaims({ sub })), 400, `sub ${JSON.stringify(sub)}`);
  }
  for (const runId of ["run_1", "0b7d3c1e-5f2a-4c9b-8e61-3a2f9d4c7b1", "' or 1=1 --"]) {
    assertStatus(
      check(withClaims({ run_id: runId }), { requestId: runId }),
      400,
      `run_id ${runId}`,
    );
  }
});

Deno.test("non-integer or out-of-range iat and exp are rejected with 400", () => {
  const cases: Array<[string, Record<string, unknown>, number]> = [
    ["fractional iat", { iat: NOW + 0.5 }, NOW + 0.5],
    ["string iat", { iat: String(NOW) }, NOW],
    ["negative iat", { iat: -1 }, -1],
    ["string exp", { exp: String(NOW + 300) }, NOW],
    ["fractional exp", { exp: NOW + 300.5 }, NOW],
    ["null exp", { exp: null }, NOW],
    ["huge exp", { exp: 2 ** 53 }, NOW],
  ];
  for (const [label, changes, timestamp] of cases) {
    assertStatus(check(withClaims(changes), { timestamp }), 400, label);
  }
});

Deno.test("non-string or overlong aud and scope are rejected with 400", () => {
  assertStatus(check(withClaims({ aud: [AUDIENCE] })), 400, "array aud");
  assertStatus(check(withClaims({ scope: null })), 400, "null scope");
  assertStatus(check(withClaims({ aud: "a".repeat(65) })), 400, "65-character aud");
});

Deno.test("run_id different from webhook-id is rejected with 400", () => {
  assertStatus(check(validClaims(), { requestId: "0b7d3c1e-5f2a-4c9b-8e61-3a2f9d4c7b11" }), 400);
  assertStatus(check(validClaims(), { requestId: RUN_ID.toUpperCase() }), 400);
});

Deno.test("iat different from webhook-timestamp is rejected with 400", () => {
  assertStatus(check(validClaims(), { timestamp: NOW + 1 }), 400);
  assertStatus(check(validClaims(), { timestamp: NOW - 1 }), 400);
});

Deno.test("exp not after iat is rejected with 400", () => {
  // The clock is before exp, so only the exp-after-iat check can refuse these.
  assertStatus(check(withClaims({ exp: NOW }), { nowSeconds: NOW - 10 }), 400, "exp == iat");
  assertStatus(check(withClaims({ exp: NOW - 1 }), { nowSeconds: NOW - 10 }), 400, "exp < iat");
  assert.equal(check(withClaims({ exp: NOW + 1 })).ok, true, "exp == iat + 1");
});

Deno.test("a wrong audience is rejected with 403", () => {
  for (const aud of ["import-emails", "Cron-Auto-Sync", "cron-auto-sync ", "", "authenticated"]) {
    assertStatus(check(withClaims({ aud })), 403, JSON.stringify(aud));
  }
});

Deno.test("a wrong scope is rejected with 403", () => {
  for (const scope of ["cron-auto-sync", "import-emails:all", "Import-Emails", "", "*"]) {
    assertStatus(check(withClaims({ scope })), 403, JSON.stringify(scope));
  }
});

Deno.test("expiry: exp == now is rejected with 403, exp == now + 1 passes", () => {
  assertStatus(check(validClaims(), { nowSeconds: NOW + 300 }), 403, "exp == now");
  assertStatus(check(validClaims(), { nowSeconds: NOW + 1000 }), 403, "long expired");
  assert.equal(check(validClaims(), { nowSeconds: NOW + 299 }).ok, true, "exp == now + 1");
});

Deno.test("duplicate top-level keys are refused, whichever value comes last", () => {
  for (
    const text of [
      '{"aud": "x", "aud": "cron-auto-sync"}',
      '{"aud": "cron-auto-sync", "aud": "x"}',
      '{"a\\u0075d": "x", "aud": "y"}',
    ]
  ) assert.equal(hasDuplicateTopLevelKey(text), true, text);
  for (
    const text of [
      '{"aud": "aud", "scope": "a\\"ud"}',
      '{"nested": {"aud": 1}, "aud": 2}',
      '{"list": ["aud", "aud"], "aud": 1}',
    ]
  ) assert.equal(hasDuplicateTopLevelKey(text), false, text);
});
