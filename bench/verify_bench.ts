/**
 * Benchmark 1: in-process verification of valid signed requests.
 *
 * Ours:   verify() from functions-shared/wire/standard_webhooks.ts (node:crypto HMAC).
 * Theirs: npm `standardwebhooks` — `new Webhook(secret).verify(payload, headers)`,
 *         the reference implementation of the spec (pure-JS SHA-256).
 *
 * Both get the same pool of ~200-byte claims bodies shaped like dispatch()'s, with
 * a fresh timestamp so the library's own 5-minute tolerance check passes. Each
 * round times every case for a fixed slice, in a rotating order, in this one
 * process; the report is the median ops/s per case and the ratio ours/theirs
 * (the median of the per-round ratios, each from two slices run back to back,
 * which shrugs off most of the machine's noise; the ratio of medians is printed too).
 * Goal: ours/theirs >= 1.0×. Informational: our verify with a 2-key keyring
 * during a rotation, worst case (the matching key is the second one tried), and
 * WebCrypto's `crypto.subtle.verify()` awaited per request (the alternative to
 * node:crypto that standard_webhooks.ts's header comment compares against).
 *
 *   deno run bench/verify_bench.ts
 */
import { Buffer } from "node:buffer";
import { Webhook } from "standardwebhooks";
import {
  generateSecret,
  parseSecret,
  type SigningKey,
  verify,
} from "../functions-shared/wire/standard_webhooks.ts";
import { fmt, median, ratio, spread } from "./support/figures.ts";
import * as report from "./support/report.ts";
import { sizes } from "./support/sizes.ts";
import {
  type BenchRequest,
  buildRequests,
  nowSeconds,
  webhookHeaders,
} from "./support/webhook_requests.ts";

const { pool: POOL_SIZE, rounds: ROUNDS, sliceMs: SLICE_MS, warmupMs: WARMUP_MS } = sizes.verify;
const GOAL = report.atLeast(1); // ours / standardwebhooks
const BATCH = 256; // operations between two clock reads

interface Case {
  name: string;
  /** Verifies one request; returns whether it passed (a promise for WebCrypto). */
  verifyOne: (request: BenchRequest) => boolean | Promise<boolean>;
}

function ourCase(name: string, keyring: SigningKey[]): Case {
  return {
    name,
    verifyOne: (request) =>
      verify(
        keyring,
        {
          id: request.id,
          timestamp: request.timestamp,
          signature: request.signature,
        },
        request.body,
        { nowSeconds: nowSeconds() },
      ).ok,
  };
}

function theirCase(name: string, secret: string): Case {
  // Constructed once, like our keyring, which the function parses once at start-up.
  const webhook = new Webhook(secret);
  return {
    name,
    verifyOne: (request) => {
      // Throws on a bad request; returns the parsed JSON body on success.
      webhook.verify(request.text, webhookHeaders(request));
      return true;
    },
  };
}

/** The same check with WebCrypto: HMAC key imported once, one awaited verify per request. */
async function webCryptoCase(name: string, secret: string): Promise<Case> {
  const keyBytes = Buffer.from(secret.slice("whsec_".length), "base64");
  const key = await crypto.subtle.importKey(
    "raw",
    keyBytes,
    { name: "HMAC", hash: "SHA-256" },
    false,
    [
      "verify",
    ],
  );
  const encoder = new TextEncoder();
  return {
    name,
    verifyOne: async (request) => {
      const prefix = encoder.encode(`${request.id}.${request.timestamp}.`);
      const content = new Uint8Array(prefix.length + request.body.length);
      content.set(prefix);
      content.set(request.body, prefix.length);
      const signature = Buffer.from(request.signature.slice(3), "base64");
      return await crypto.subtle.verify("HMAC", key, signature, content);
    },
  };
}

/** Runs `verifyOne` over the pool for about `ms` milliseconds; returns ops/s. */
async function opsPerSecond(testCase: Case, pool: BenchRequest[], ms: number): Promise<number> {
  let done = 0;
  let passed = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < BATCH; i++) {
      const result = testCase.verifyOne(pool[(done + i) % pool.length]);
      // Only the WebCrypto case returns a promise; the synchronous ones are not awaited.
      if (result instanceof Promise ? await result : result) passed++;
    }
    done += BATCH;
    elapsed = performance.now() - started;
  }
  if (passed !== done) {
    throw new Error(`Case "${testCase.name}" rejected ${done - passed} valid requests`);
  }
  return done / (elapsed / 1000);
}

async function checkEveryCaseAccepts(cases: Case[], pool: BenchRequest[]): Promise<void> {
  for (const testCase of cases) {
    for (const request of pool) {
      if (!(await testCase.verifyOne(request))) {
        throw new Error(`Case "${testCase.name}" rejects a valid request: the inputs are wrong`);
      }
    }
  }
}

/** ROUNDS rounds; round r starts at case r mod n so no case always runs first. */
async function runRounds(cases: Case[], pool: BenchRequest[]): Promise<number[][]> {
  const results = cases.map(() => [] as number[]);
  for (const testCase of cases) await opsPerSecond(testCase, pool, WARMUP_MS);
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < cases.length; k++) {
      const index = (round + k) % cases.length;
      results[index].push(await opsPerSecond(cases[index], pool, SLICE_MS));
    }
  }
  return results;
}

async function main(): Promise<void> {
  const secret = generateSecret();
  const key = parseSecret(secret);
  const otherKey = parseSecret(generateSecret());
  const pool = buildRequests([key], POOL_SIZE);
  const averageBytes = pool.reduce((sum, request) => sum + request.body.length, 0) / pool.length;

  const cases = [
    ourCase("ours: verify(), 1 key", [key]),
    theirCase("standardwebhooks: Webhook.verify()", secret),
    ourCase("ours: verify(), 2-key keyring, match on 2nd key", [otherKey, key]),
    await webCryptoCase("for reference: crypto.subtle.verify(), awaited", secret),
  ];
  await checkEveryCaseAccepts(cases, pool);

  report.section("verify: valid requests, in process");
  console.log(
    `${POOL_SIZE} distinct requests, body ${
      fmt(averageBytes)
    } bytes, ${ROUNDS} rounds × ${SLICE_MS} ms ` +
      `per case, rotating order, Deno ${Deno.version.deno}`,
  );
  const results = await runRounds(cases, pool);
  const medians = results.map(median);
  report.table([
    ["case", "median ops/s", "rounds min–max", "vs standardwebhooks"],
    ...cases.map((testCase, i) => [
      testCase.name,
      fmt(medians[i]),
      spread(results[i]),
      ratio(medians[i] / medians[1]),
    ]),
  ]);
  const perRound = results[0].map((value, round) => value / results[1][round]);
  const ours = median(perRound);
  console.log(
    `ratio ours/theirs: median of per-round ratios ${ratio(ours)} ` +
      `(rounds ${spread(perRound, 2)}; ratio of medians ${ratio(medians[0] / medians[1])}) ` +
      `— ${report.goal(GOAL, ours)}`,
  );
  report.summary(
    `verify: ours ${fmt(medians[0])} ops/s, standardwebhooks ${fmt(medians[1])} ops/s, ` +
      `ratio ${ratio(ours)} (${report.goal(GOAL, ours)}); ` +
      `2-key keyring ${fmt(medians[2])} ops/s; crypto.subtle ${fmt(medians[3])} ops/s`,
  );
}

await main();
