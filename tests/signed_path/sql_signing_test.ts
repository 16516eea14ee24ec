/**
 * The SQL signer (auto_sync.sign, pgcrypto) and the TypeScript verifier agree byte
 * for byte, including non-ASCII text, and both agree with npm `standardwebhooks`,
 * an implementation we did not write. Both hold to the shared vector file
 * (tests/fixtures/wire_vectors.json), and accept exactly the same signing keys.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Webhook } from "standardwebhooks";
import {
  jsonbText,
  signRequest,
  webhookHeaders,
} from "../../functions-shared/wire/client/signed_request.ts";
import {
  generateSecret,
  parseSecret,
  verify,
} from "../../functions-shared/wire/standard_webhooks.ts";
import vectors from "../fixtures/wire_vectors.json" with { type: "json" };
import { connect } from "../support/local_stack.ts";

const sql = connect();
const KAT = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  payload: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};

const BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const keyBytes = (secret: string) => Buffer.from(secret.slice("whsec_".length), "base64");

Deno.test("SQL signer reproduces the Standard Webhooks known-answer vector", async () => {
  const [row] = await sql`
    select auto_sync.sign(${KAT.id}, ${KAT.timestamp}, ${KAT.payload}, array[${
    keyBytes(KAT.secret)
  }::bytea]) as signature`;
  assert.equal(row.signature, KAT.signature);
});

const payloads: Record<string, unknown> = {
  ascii: { aud: "cron-auto-sync", n: 1 },
  accents: { name: "Zoë Ångström — café" },
  cjk: { subject: "日本語のメール 件名" },
  emoji: { text: "mail 📬 ✅", nested: { list: ["ß", "ø", "€"] } },
  escapes: { quote: 'say "hi"\\ \n tab\t', control: "\u0001" },
};

for (const [name, claims] of Object.entries(payloads)) {
  Deno.test(`SQL-signed ${name} body verifies in TypeScript and in standardwebhooks, byte for byte`, async () => {
    const secret = generateSecret();
    const id = `msg_${crypto.randomUUID().replaceAll("-", "")}`;
    const timestamp = Math.floor(Date.now() / 1000);
    // Exactly what dispatch() does: sign jsonb::text, send convert_to(jsonb::text, 'UTF8').
    const [row] = await sql`
      with b as (select ${sql.json(claims as never)}::jsonb as body)
      select convert_to(body::text, 'UTF8') as bytes,
             auto_sync.sign(${id}, ${timestamp}, body::text, array[${
      keyBytes(secret)
    }::bytea]) as signature
        from b`;
    const bytes = new Uint8Array(row.bytes);
    assert.equal(jsonbText(claims), new TextDecoder().decode(bytes), "jsonbText = jsonb::text");

    const ours = verify(
      [parseSecret(secret)],
      { id, timestamp: String(timestamp), signature: row.signature },
      bytes,
      {
        nowSeconds: timestamp,
      },
    );
    assert.deepEqual(ours, { ok: true, id, timestamp });

    const headers = webhookHeaders({
      id,
      timestamp: String(timestamp),
      signature: row.signature,
      body: bytes,
    });
    const theirs = new Webhook(secret).verify(new TextDecoder().decode(bytes), headers);
    assert.deepEqual(theirs, JSON.parse(new TextDecoder().decode(bytes)));

    // And one flipped body byte breaks it on our side.
    const tampered = bytes.slice();
    tampered[tampered.length - 2] ^= 1;
    assert.equal(
      verify(
        [parseSecret(secret)],
        { id, timestamp: String(timestamp), signature: row.signature },
        tampered,
        {
          nowSeconds: timestamp,
        },
      ).ok,
      false,
    );
  });
}

Deno.test("SQL signer emits one v1 signature per Vault key, in order", async () => {
  const [first, second] = [generateSecret(), generateSecret()];
  const [row] = await sql`
    select auto_sync.sign('msg_1', 1700000000, '{}', array[${keyBytes(first)}::bytea, ${
    keyBytes(second)
  }::bytea]) as signature`;
  const parts = row.signature.split(" ");
  assert.equal(parts.length, 2);
  const body = new TextEncoder().encode("{}");
  const headers = (signature: string) => ({ id: "msg_1", timestamp: "1700000000", signature });
  assert.equal(
    verify([parseSecret(first)], headers(parts[0]), body, { nowSeconds: 1700000000 }).ok,
    true,
  );
  assert.equal(
    verify([parseSecret(second)], headers(parts[1]), body, { nowSeconds: 1700000000 }).ok,
    true,
  );
  assert.equal(
    verify([parseSecret(first)], headers(parts[1]), body, { nowSeconds: 1700000000 }).ok,
    false,
  );
});

for (const vector of vectors.signatures) {
  Deno.test(`vector "${vector.name}": the database builds the same bytes and signature as TypeScript`, async () => {
    const [row] = await sql`
      select auto_sync.sign(${vector.id}, ${vector.timestamp}, ${vector.body},
               array(select auto_sync.signing_key_bytes(k) from unnest(${vector.keys}::text[]) k)) as signature,
             case when ${vector.claims !== null}
                  then convert_to(auto_sync.request_claims(${vector.claims?.sub ?? null}::uuid,
                                    ${vector.claims?.run_id ?? null}::uuid, ${
      vector.claims?.iat ?? 0
    }::bigint,
                                    ${
      (vector.claims?.exp ?? 0) - (vector.claims?.iat ?? 0)
    }::bigint)::text, 'UTF8')
             end as claims_bytes`;
    assert.equal(row.signature, vector.signature);
    const ours = signRequest(vector.keys.map(parseSecret), vector.body, vector);
    assert.equal(ours.signature, row.signature);
    if (vector.claims) {
      assert.deepEqual(new Uint8Array(row.claims_bytes), ours.body);
      assert.equal(jsonbText(vector.claims), vector.body);
    }
  });
}

/** Which of `secrets` the database's signer accepts, and which the function's key parser. */
async function acceptance(secrets: string[]) {
  const rows = await sql`
    select auto_sync.signing_key_bytes(k) is not null as accepted
      from unnest(${secrets}::text[]) with ordinality as t (k, n) order by n`;
  return secrets.map((secret, index) => {
    let function_ = true;
    try {
      parseSecret(secret); // the key rule; parseKeyring adds the entry syntax around it
    } catch {
      function_ = false;
    }
    return { secret, sql: rows[index].accepted as boolean, function: function_ };
  });
}

Deno.test("a key the database signs with is a key the function accepts, and vice versa", async () => {
  const secrets = vectors.keys.map((key) => key.secret);
  for (let length = 0; length <= 80; length++) {
    const encoded = Buffer.from(crypto.getRandomValues(new Uint8Array(length))).toString("base64");
    secrets.push(
      `whsec_${encoded}`,
      `whsec_${encoded.replace(/=+$/, "")}`, // padding left out
      `whsec_${encoded.replaceAll("+", "-").replaceAll("/", "_")}`, // URL-safe alphabet
      `whsec_${encoded}\n`,
    );
    // the last data character one up: padding bits set (not canonical) or other bytes
    const data = encoded.replace(/=+$/, "");
    if (data.length > 0) {
      const last = BASE64_ALPHABET.indexOf(data.at(-1)!);
      secrets.push(
        `whsec_${data.slice(0, -1)}${BASE64_ALPHABET[(last + 1) % 64]}${
          encoded.slice(data.length)
        }`,
      );
    }
  }
  const results = await acceptance(secrets);
  const disagreements = results.filter((result) => result.sql !== result.function);
  assert.deepEqual(disagreements, []);
  for (const key of vectors.keys) {
    assert.equal(
      results.find((result) => result.secret === key.secret)?.sql,
      key.accepted,
      key.why,
    );
  }
  // Both bounds are really exercised, on both sides.
  assert.ok(results.some((result) => result.sql) && results.some((result) => !result.sql));
});

Deno.test("a Vault key outside the bounds stops signing, as it would stop the function", async () => {
  for (const length of [23, 24, 64, 65]) {
    const secret = `whsec_${
      Buffer.from(crypto.getRandomValues(new Uint8Array(length))).toString("base64")
    }`;
    const accepted = length >= 24 && length <= 64;
    const rollBack = new Error("roll back");
    const outcome = await sql.begin(async (tx) => {
      await tx`select vault.create_secret(${secret}, ${`auto_sync_signing_key:bounds-${length}`})`;
      const signed = await tx`select cardinality(auto_sync.signing_keys()) as n`
        .then(() => true, (error) => String(error.message));
      throw Object.assign(rollBack, { signed });
    }).catch((error) => {
      if (error !== rollBack) throw error;
      return (error as Error & { signed: true | string }).signed;
    });
    if (accepted) {
      assert.equal(outcome, true, `${length} bytes: the database signs with it`);
      assert.doesNotThrow(() => parseSecret(secret));
    } else {
      assert.match(String(outcome), /is not a whsec_ key/, `${length} bytes: signing refuses it`);
      assert.doesNotMatch(
        String(outcome),
        new RegExp(secret.slice(6, 20).replace(/[+/]/g, "\\$&")),
      );
      assert.throws(() => parseSecret(secret));
    }
  }
});

Deno.test({
  name: "close the database connection",
  fn: () => sql.end(),
});
