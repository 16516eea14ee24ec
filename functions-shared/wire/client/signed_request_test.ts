import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { checkClaims } from "../claims.ts";
import { buildClaims, jsonbText, signClaims, signRequest } from "./signed_request.ts";
import { parseKeyring, parseSecret, verify } from "../standard_webhooks.ts";
import vectors from "../../../tests/fixtures/wire_vectors.json" with { type: "json" };
import {
  MAX_SIGNING_KEYS,
  REQUEST_LIFETIME_SECONDS,
  SIGNING_KEY_MAX_BYTES,
  SIGNING_KEY_MIN_BYTES,
} from "../wire_limits.ts";

const decoder = new TextDecoder();

Deno.test("wire limits are the vector file's (pgTAP holds auto_sync.wire_limit to the same file)", () => {
  assert.deepEqual(vectors.limits, {
    signing_key_min_bytes: SIGNING_KEY_MIN_BYTES,
    signing_key_max_bytes: SIGNING_KEY_MAX_BYTES,
    max_signing_keys: MAX_SIGNING_KEYS,
    request_lifetime_seconds: REQUEST_LIFETIME_SECONDS,
  });
});

for (const vector of vectors.signatures) {
  Deno.test(`vector "${vector.name}": body bytes and signature`, () => {
    const keys = vector.keys.map(parseSecret);
    if (vector.claims) {
      assert.equal(jsonbText(vector.claims), vector.body, "jsonb::text of the claims");
      const { sub, run_id, iat, exp } = vector.claims;
      assert.deepEqual(
        buildClaims(sub, run_id, { iat, lifetimeSeconds: exp - iat }),
        vector.claims,
        "buildClaims",
      );
      const request = signClaims(keys, vector.claims);
      assert.equal(decoder.decode(request.body), vector.body);
      assert.equal(request.signature, vector.signature);
      assert.equal(request.id, vector.id);
      assert.equal(request.timestamp, String(vector.timestamp));
    }
    const request = signRequest(keys, vector.body, { id: vector.id, timestamp: vector.timestamp });
    assert.equal(request.signature, vector.signature);
    // Each key's signature, in order: ours verifies it, npm standardwebhooks makes the same.
    for (const [index, secret] of vector.keys.entries()) {
      const signature = request.signature.split(" ")[index];
      assert.deepEqual(
        verify(
          [parseSecret(secret)],
          { id: request.id, timestamp: request.timestamp, signature },
          request.body,
          { nowSeconds: vector.timestamp },
        ),
        { ok: true, id: vector.id, timestamp: vector.timestamp },
      );
      // npm standardwebhooks (checks timestamps against the real clock, so sign, not verify)
      assert.equal(
        new Webhook(secret).sign(vector.id, new Date(vector.timestamp * 1000), vector.body),
        signature,
      );
    }
  });
}

Deno.test("signed claims pass the verifier's claims check", () => {
  const vector = vectors.signatures.find((v) => v.claims)!;
  const request = signClaims(vector.keys.map(parseSecret), vector.claims!);
  const check = checkClaims(request.body, {
    requestId: request.id,
    timestamp: Number(request.timestamp),
    nowSeconds: Number(request.timestamp),
  });
  assert.equal(check.ok, true);
});

for (const key of vectors.keys) {
  Deno.test(`key ${key.why}: ${key.accepted ? "accepted" : "refused"} by parseSecret`, () => {
    if (key.accepted) {
      parseSecret(key.secret);
      assert.equal(parseKeyring(`v1,${key.secret}`).length, 1);
    } else {
      assert.throws(() => parseSecret(key.secret));
    }
  });
}

Deno.test(`a keyring holds at most ${MAX_SIGNING_KEYS} keys`, () => {
  const accepted = vectors.keys.filter((key) => key.accepted).map((key) => `v1,${key.secret}`);
  assert.ok(accepted.length > MAX_SIGNING_KEYS);
  assert.equal(
    parseKeyring(accepted.slice(0, MAX_SIGNING_KEYS).join("|")).length,
    MAX_SIGNING_KEYS,
  );
  assert.throws(() => parseKeyring(accepted.slice(0, MAX_SIGNING_KEYS + 1).join("|")));
});

Deno.test("jsonbText orders keys as jsonb does and escapes as Postgres does", () => {
  assert.equal(
    jsonbText({ bb: 1, a: [true, null, "x"], ccc: { é: '\n\u0001"\\/', e: "ß" } }),
    '{"a": [true, null, "x"], "bb": 1, "ccc": {"e": "ß", "é": "\\n\\u0001\\"\\\\/"}}',
  );
  assert.equal(jsonbText({ a: 1, a2: 2 }), '{"a": 1, "a2": 2}');
  assert.equal(jsonbText({ n: 1.5, m: -0.25 }), '{"m": -0.25, "n": 1.5}');
  for (const n of [1e21, 1e-7, NaN, Infinity]) {
    assert.throws(() => jsonbText({ n }), /no plain decimal form/);
  }
});

Deno.test("buildClaims defaults to now and the request lifetime", () => {
  const before = Math.floor(Date.now() / 1000);
  const claims = buildClaims(
    "6f1c2d3e-4b5a-4c6d-8e7f-901a2b3c4d5e",
    "0d9e8f7a-6b5c-4d3e-9f2a-1b0c9d8e7f6a",
  );
  assert.ok(claims.iat >= before && claims.iat <= before + 1);
  assert.equal(claims.exp - claims.iat, REQUEST_LIFETIME_SECONDS);
});

Deno.test("no function module imports the client side (functions only verify)", () => {
  const root = new URL("../../", import.meta.url);
  const importers: string[] = [];
  const walk = (dir: URL, path: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const name = `${path}${entry.name}`;
      if (entry.isDirectory) walk(new URL(`${entry.name}/`, dir), `${name}/`);
      else if (
        name.endsWith(".ts") && !name.endsWith("_test.ts") && !name.startsWith("wire/client/")
      ) {
        const text = Deno.readTextFileSync(new URL(entry.name, dir));
        if (/from\s+["'][^"']*\/client\//.test(text)) importers.push(name);
      }
    }
  };
  walk(root, "");
  assert.deepEqual(importers, []);
});
