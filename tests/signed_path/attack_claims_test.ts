/**
 * Attack: correctly signed requests that claim the wrong thing, and signatures
 * that are almost right. Claims bodies are signed by the database's own signer
 * (auto_sync.sign over jsonb::text with the Vault keys) unless the body cannot be
 * jsonb; signature tricks are built in TypeScript from the stack's key bytes.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { generateSecret } from "../../functions-shared/wire/standard_webhooks.ts";
import { connect } from "../support/local_stack.ts";
import { nowSeconds, type SignedRequest, signInDatabase } from "../support/signed_requests.ts";
import {
  assertNoSecretIn,
  assertUntouched,
  collectedBodies,
  Fixtures,
  post,
  runStatus,
  signClaims,
  signRaw,
  stackKeyBytes,
  v1Signature,
  waitFinished,
} from "../support/attack_support.ts";

const sql = connect();
const fixtures = new Fixtures(sql);
const cases: Record<string, number> = {};
const count = (category: string, n = 1) => cases[category] = (cases[category] ?? 0) + n;

async function expectStatus(request: SignedRequest, status: number, label: string) {
  const answer = await post(request);
  assert.equal(answer.status, status, `${label}: ${answer.text}`);
  return answer;
}

Deno.test("another audience, in any spelling, is refused (403); a non-string audience fails the schema (400)", async () => {
  const { runId, claims } = await fixtures.run();
  const wrong = [
    "import-emails",
    "Cron-Auto-Sync",
    "CRON-AUTO-SYNC",
    "cron-auto-sync ",
    " cron-auto-sync",
    "cron_auto_sync",
    "cron-auto-sync/",
    "cron-auto-sync\n",
    "crön-auto-sync",
    "cron\u2010auto\u2010sync",
    "",
    "*",
    "authenticated",
    "service_role",
  ];
  for (const aud of wrong) {
    await expectStatus(
      await signInDatabase(sql, { ...claims, aud }),
      403,
      `aud ${JSON.stringify(aud)}`,
    );
    count("audience");
  }
  // NUL cannot be in jsonb: sign the JSON text in TypeScript instead.
  await expectStatus(signClaims({ ...claims, aud: "cron-auto-sync\u0000" }), 403, "aud with NUL");
  count("audience");
  for (const aud of [["cron-auto-sync"], { aud: "cron-auto-sync" }, null, 1, true]) {
    await expectStatus(
      await signInDatabase(sql, { ...claims, aud }),
      400,
      `aud ${JSON.stringify(aud)}`,
    );
    count("audience");
  }
  const noAud: Record<string, unknown> = { ...claims };
  delete noAud.aud;
  await expectStatus(await signInDatabase(sql, noAud), 400, "no aud");
  count("audience");
  await assertUntouched(sql, runId);
});

Deno.test("another scope, in any spelling, is refused (403); a non-string scope fails the schema (400)", async () => {
  const { runId, claims } = await fixtures.run();
  for (
    const scope of [
      "IMPORT-EMAILS",
      "import-emails admin",
      "import-emails,admin",
      "admin",
      "*",
      "",
      "import_emails",
      "import-email",
    ]
  ) {
    await expectStatus(
      await signInDatabase(sql, { ...claims, scope }),
      403,
      `scope ${JSON.stringify(scope)}`,
    );
    count("scope");
  }
  for (const scope of [["import-emails"], { scope: "import-emails" }, null]) {
    await expectStatus(
      await signInDatabase(sql, { ...claims, scope }),
      400,
      `scope ${JSON.stringify(scope)}`,
    );
    count("scope");
  }
  await assertUntouched(sql, runId);
});

Deno.test("another user: user A's run claimed for user B (who has an enabled schedule and a run of their own) is refused (404)", async () => {
  const b = await fixtures.run();
  const aUser = await fixtures.user();
  const aRuns: string[] = [];
  for (
    const sub of [
      b.userId,
      b.userId.toUpperCase(),
      crypto.randomUUID(),
      "00000000-0000-0000-0000-000000000000",
    ]
  ) {
    // A fresh run of A each time: a signed request that reaches the database burns its id.
    const a = await fixtures.run({ userId: aUser });
    aRuns.push(a.runId);
    await expectStatus(
      await signInDatabase(sql, { ...a.claims, sub }),
      404,
      `run of A with sub ${sub}`,
    );
    count("user");
  }
  // B's run claimed for A: also 404.
  await expectStatus(
    await signInDatabase(sql, { ...b.claims, sub: aUser }),
    404,
    "run of B with sub A",
  );
  count("user");
  // No run moved: they stay dispatched (never accepted, never imported).
  for (const runId of [...aRuns, b.runId]) assert.equal(await runStatus(sql, runId), "dispatched");
  const [accepted] = await sql`
    select count(*)::int as n from auto_sync.runs where id = any(${[
    ...aRuns,
    b.runId,
  ]}::uuid[]) and accepted_at is not null`;
  assert.equal(accepted.n, 0);
});

Deno.test("expiry: exp in the past is refused (403); exp not after iat fails (400)", async () => {
  const { runId, claims } = await fixtures.run();
  const now = nowSeconds();
  const iat = now - 200; // inside the timestamp window
  for (const exp of [now - 1, now - 100, iat + 1]) {
    await expectStatus(
      await signInDatabase(sql, { ...claims, iat, exp }),
      403,
      `exp ${exp - now} s from now`,
    );
    count("expiry");
  }
  for (const exp of [iat, iat - 1, 0]) {
    await expectStatus(
      await signInDatabase(sql, { ...claims, iat, exp }),
      400,
      `exp ${exp - iat} s after iat`,
    );
    count("expiry");
  }
  await assertUntouched(sql, runId);
});

Deno.test("iat different from webhook-timestamp, and webhook-id different from run_id, fail (400)", async () => {
  const { runId, claims } = await fixtures.run();
  for (const delta of [-1, 1, -300, 60]) {
    const iat = claims.iat + delta;
    // body iat shifted, header timestamp honest
    await expectStatus(
      await signInDatabase(sql, { ...claims, iat, exp: iat + 300 }, { timestamp: claims.iat }),
      400,
      `iat ${delta}`,
    );
    count("iat/id binding");
  }
  for (
    const id of [crypto.randomUUID(), runId.toUpperCase(), runId.replaceAll("-", ""), `${runId}-x`]
  ) {
    await expectStatus(await signInDatabase(sql, claims, { id }), 400, `webhook-id ${id}`);
    count("iat/id binding");
  }
  await assertUntouched(sql, runId);
});

Deno.test("signatures from keys not in the keyring are refused (401)", async () => {
  const { runId, claims } = await fixtures.run();
  const honest = await signInDatabase(sql, claims);
  const [key] = stackKeyBytes();
  const secret = `whsec_${Buffer.from(key).toString("base64")}`;
  const flippedKey = new Uint8Array(key);
  flippedKey[0] ^= 1;
  const sigWith = (hmacKey: Uint8Array | string, algorithm = "sha256") =>
    "v1," +
    createHmac(algorithm, hmacKey).update(`${honest.id}.${honest.timestamp}.`).update(honest.body)
      .digest("base64");
  const forged: Record<string, string> = {
    "a revoked key (random whsec_)": sigWith(
      new Uint8Array(Buffer.from(generateSecret().slice(6), "base64")),
    ),
    "the key with one bit flipped": sigWith(flippedKey),
    "the whsec_ text as HMAC key": sigWith(secret),
    "the base64 text as HMAC key": sigWith(secret.slice(6)),
    "an empty key": sigWith(new Uint8Array(0)),
    "HMAC-SHA1 with the right key": sigWith(key, "sha1"),
    "HMAC-SHA512 with the right key": sigWith(key, "sha512"),
    "HMAC-SHA512/256 truncated": "v1," +
      Buffer.from(
        createHmac("sha512", key).update(`${honest.id}.${honest.timestamp}.`).update(honest.body)
          .digest(),
      ).subarray(0, 32).toString("base64"),
    "plain SHA-256 of the content": "v1," +
      Buffer.from(
        await crypto.subtle.digest(
          "SHA-256",
          Buffer.concat([
            Buffer.from(`${honest.id}.${honest.timestamp}.`),
            Buffer.from(honest.body),
          ]),
        ),
      ).toString("base64"),
  };
  for (const [label, signature] of Object.entries(forged)) {
    await expectStatus({ ...honest, signature }, 401, label);
    count("foreign keys");
  }
  await assertUntouched(sql, runId);
});

Deno.test("signature header spellings: no prefix, V1, v2, v1a, other separators, other encodings are refused (401)", async () => {
  const { runId, claims } = await fixtures.run();
  const honest = signClaims(claims);
  const b64 = honest.signature.slice(3);
  const bytes = Buffer.from(b64, "base64");
  // The same 32 bytes in a second base64 spelling: the last character carries 2 unused bits.
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const last = alphabet.indexOf(b64[42]);
  const sameBytes = b64.slice(0, 42) + alphabet[last ^ 1] + "=";
  assert.deepEqual(
    Buffer.from(sameBytes, "base64"),
    bytes,
    "the second spelling decodes to the same bytes",
  );
  const spellings: Record<string, string> = {
    "no version prefix": b64,
    "V1,": `V1,${b64}`,
    "v2, alone": `v2,${b64}`,
    "v1a, (the Ed25519 scheme)": `v1a,${b64}`,
    "v0,": `v0,${b64}`,
    "v1, followed by a space": `v1, ${b64}`,
    "v1:": `v1:${b64}`,
    "v1;": `v1;${b64}`,
    "v1=": `v1=${b64}`,
    ",": `,${b64}`,
    "v1,, (doubled comma)": `v1,,${b64}`,
    "v1 (space)": `v1 ${b64}`,
    "no padding": `v1,${b64.replace(/=+$/, "")}`,
    "extra padding": `v1,${b64}=`,
    "base64url": `v1,${bytes.toString("base64url")}`,
    "hex": `v1,${bytes.toString("hex")}`,
    "second base64 spelling of the same bytes": `v1,${sameBytes}`,
    "lower-cased base64": `v1,${b64.toLowerCase()}`,
    "first 43 characters": `v1,${b64.slice(0, 43)}`,
    "signature twice, concatenated": `v1,${b64}${b64}`,
    "valid after 8 other entries (too many)": `${
      Array.from({ length: 8 }, () => `v1,${"A".repeat(43)}=`).join(" ")
    } v1,${b64}`,
    "valid after padding to 1025 bytes": `${
      "v2,x".padEnd(1024 - honest.signature.length, "x")
    } ${honest.signature}`,
    "comma-separated list": `v1,${"A".repeat(43)}=,v1,${b64}`,
    "tab-separated list": `v1,${"A".repeat(43)}=\tv1,${b64}`,
  };
  if (!/[+/]/.test(b64)) delete spellings["base64url"]; // then it is the same text
  if (b64.toLowerCase() === b64) delete spellings["lower-cased base64"];
  for (const [label, signature] of Object.entries(spellings)) {
    await expectStatus({ ...honest, signature }, 401, label);
    count("signature spelling");
  }
  await assertUntouched(sql, runId);
});

Deno.test("a valid v1 signature beside a v2, an empty entry or an empty v1, entry is accepted (one run each)", async () => {
  const decorations: Record<string, (valid: string) => string> = {
    "v2 entry before": (valid) => `v2,${"B".repeat(43)}= ${valid}`,
    "v2 entry with the valid bytes before": (valid) => `v2,${valid.slice(3)} ${valid}`,
    "empty entry (double space)": (valid) => `v1,${"A".repeat(43)}=  ${valid}`,
    "empty v1, entry after": (valid) => `${valid} v1,`,
    "an invalid v1 entry after": (valid) => `${valid} v1,${"A".repeat(43)}=`,
  };
  for (const [label, decorate] of Object.entries(decorations)) {
    const { runId, claims } = await fixtures.run();
    const honest = signClaims(claims);
    const answer = await post({ ...honest, signature: decorate(honest.signature) });
    assert.equal(answer.status, 202, `${label}: ${answer.text}`);
    assert.equal(await waitFinished(sql, runId), "skipped");
    count("signature beside others");
  }
});

Deno.test("a v1 signature over another id, timestamp or body is not transferable (401)", async () => {
  const a = await fixtures.run();
  const b = await fixtures.run();
  const signedA = signClaims(a.claims);
  const signedB = signClaims(b.claims);
  const [key] = stackKeyBytes();
  const transfers: Record<string, SignedRequest> = {
    "A's signature on B's request": { ...signedB, signature: signedA.signature },
    "A's signature with B's id": { ...signedA, id: signedB.id },
    "B's body under A's headers": { ...signedA, body: signedB.body },
    // Boundary shifting: id "x" + ts "y" must not equal id "x.y" etc.
    "id and timestamp boundary shifted": {
      ...signRaw(`${a.runId}`, signedA.timestamp, signedA.body),
      id: `${a.runId}.${signedA.timestamp.slice(0, 2)}`,
      timestamp: signedA.timestamp.slice(2),
    },
    "timestamp and body boundary shifted": {
      id: a.runId,
      timestamp: signedA.timestamp.slice(0, -1),
      signature: v1Signature(key, a.runId, signedA.timestamp, signedA.body),
      body: Buffer.concat([
        Buffer.from(signedA.timestamp.slice(-1) + "."),
        Buffer.from(signedA.body),
      ]),
    },
  };
  for (const [label, request] of Object.entries(transfers)) {
    await expectStatus(request, 401, label);
    count("transfer");
  }
  await assertUntouched(sql, a.runId);
  await assertUntouched(sql, b.runId);
});

Deno.test("no signing secret in any response body of this file", () => {
  console.log(`claims and signature cases: ${JSON.stringify(cases)}`);
  assertNoSecretIn(collectedBodies, "claims responses");
});

fixtures.cleanUpLast();
