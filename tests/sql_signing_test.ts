/**
 * The SQL signer (auto_sync.sign, pgcrypto) and the TypeScript verifier agree byte
 * for byte, including non-ASCII text, and both agree with npm `standardwebhooks`,
 * an implementation we did not write.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Webhook } from "standardwebhooks";
import { generateSecret, parseSecret, verify } from "../functions-shared/standard_webhooks.ts";
import { connect } from "./support/local_stack.ts";

const sql = connect();
const KAT = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  payload: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};

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

    const ours = verify(
      [parseSecret(secret)],
      { id, timestamp: String(timestamp), signature: row.signature },
      bytes,
      {
        nowSeconds: timestamp,
      },
    );
    assert.deepEqual(ours, { ok: true, id, timestamp });

    const theirs = new Webhook(secret).verify(new TextDecoder().decode(bytes), {
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": row.signature,
    });
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

Deno.test({
  name: "close the database connection",
  fn: () => sql.end(),
});
