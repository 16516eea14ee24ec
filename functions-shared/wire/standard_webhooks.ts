/**
 * Standard Webhooks v1 (https://www.standardwebhooks.com): signing and verification.
 *
 * Signed content: `<webhook-id>.<webhook-timestamp>.<raw body bytes>`, HMAC-SHA256
 * with the bytes of a `whsec_<base64>` secret; header `webhook-signature` carries
 * space-separated `v1,<base64>` entries (several during a key rotation).
 *
 * HMAC-SHA256 per RFC 2104 from node:crypto's SHA-256 with the two padded-key states
 * computed once per key (`SigningKey`): a verify clones two hash states instead of
 * building node:crypto's `Hmac` (a stream object with its own Buffers on every call),
 * and signatures are compared as text: together about a quarter less server CPU per
 * refused request (BENCHMARKS.md). The tests check it against `createHmac`, the
 * Standard Webhooks vector and npm `standardwebhooks`.
 */
import { Buffer } from "node:buffer";
import { createHash, type Hash, randomBytes } from "node:crypto";
import {
  MAX_SIGNING_KEYS,
  REQUEST_LIFETIME_SECONDS,
  SIGNING_KEY_MAX_BYTES,
  SIGNING_KEY_MIN_BYTES,
} from "./wire_limits.ts";

export const DEFAULT_TOLERANCE_SECONDS = REQUEST_LIFETIME_SECONDS;

const SHA256_BLOCK_BYTES = 64;

/** SHA-256 state after one block of the key (zero-padded) XOR `pad`. */
function paddedKeyState(key: Uint8Array, pad: number): Hash {
  const block = new Uint8Array(SHA256_BLOCK_BYTES).fill(pad);
  for (let i = 0; i < key.length; i++) block[i] ^= key[i];
  return createHash("sha256").update(block);
}

/** One HMAC key. Opaque on purpose: it must never be logged or serialised. */
export class SigningKey {
  readonly #inner: Hash;
  readonly #outer: Hash;
  constructor(bytes: Uint8Array) {
    // RFC 2104: a key longer than the block is hashed first (ours are at most 64 bytes).
    const key = bytes.length > SHA256_BLOCK_BYTES
      ? new Uint8Array(createHash("sha256").update(bytes).digest())
      : bytes;
    this.#inner = paddedKeyState(key, 0x36);
    this.#outer = paddedKeyState(key, 0x5c);
  }
  /** Base64 HMAC-SHA256 of the parts, in order (strings as UTF-8). */
  hmacBase64(...parts: (string | Uint8Array)[]): string {
    const inner = this.#inner.copy();
    for (const part of parts) inner.update(part);
    return this.#outer.copy().update(inner.digest()).digest("base64");
  }
  toJSON(): string {
    return "[signing key]";
  }
}

export class KeyringError extends Error {}

const SECRET_PREFIX = "whsec_";
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Decodes `whsec_<base64>` (the Standard Webhooks secret format). */
export function parseSecret(secret: string): SigningKey {
  if (!secret.startsWith(SECRET_PREFIX)) {
    throw new KeyringError('Invalid signing secret: expected "whsec_<base64>"');
  }
  const encoded = secret.slice(SECRET_PREFIX.length);
  const bytes = BASE64.test(encoded) ? Buffer.from(encoded, "base64") : Buffer.alloc(0);
  if (bytes.toString("base64") !== encoded) {
    throw new KeyringError("Invalid signing secret: not canonical base64");
  }
  if (bytes.length < SIGNING_KEY_MIN_BYTES || bytes.length > SIGNING_KEY_MAX_BYTES) {
    throw new KeyringError(
      `Invalid signing secret: ${bytes.length} bytes, expected ${SIGNING_KEY_MIN_BYTES} to ${SIGNING_KEY_MAX_BYTES}`,
    );
  }
  return new SigningKey(new Uint8Array(bytes));
}

/**
 * Parses a keyring in the format Supabase uses for hook secrets:
 * `v1,whsec_...` entries separated by `|`. Errors name the entry, never its value.
 */
export function parseKeyring(
  value: string | undefined,
  name = "AUTO_SYNC_SIGNING_SECRETS",
): SigningKey[] {
  if (!value || value.trim() === "") {
    throw new KeyringError(`Missing ${name}: set it to "v1,whsec_<base64>[|v1,whsec_<base64>]"`);
  }
  const entries = value.trim().split("|");
  if (entries.length > MAX_SIGNING_KEYS) {
    throw new KeyringError(
      `Invalid ${name}: ${entries.length} keys, keep at most ${MAX_SIGNING_KEYS} during a rotation`,
    );
  }
  return entries.map((entry, index) => {
    const trimmed = entry.trim();
    if (!trimmed.startsWith("v1,")) {
      throw new KeyringError(`Invalid ${name}: entry ${index + 1} does not start with "v1,"`);
    }
    try {
      return parseSecret(trimmed.slice(3));
    } catch (error) {
      throw new KeyringError(`Invalid ${name}: entry ${index + 1}: ${(error as Error).message}`);
    }
  });
}

/** A fresh `whsec_` secret: 32 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString("base64");
}

export interface SignedContent {
  id: string;
  /** Unix seconds; a string is signed exactly as given (tests sign malformed ones). */
  timestamp: number | string;
  payload: Uint8Array;
}

function signatureFor(key: SigningKey, content: SignedContent): string {
  return key.hmacBase64(`${content.id}.${content.timestamp}.`, content.payload);
}

/**
 * Compares two strings in time that depends only on their length (which is public:
 * a signature's is fixed), like `timingSafeEqual` without making two Buffers per
 * comparison. npm `standardwebhooks` 1.1.1 compares its base64 text the same way
 * (dist/timing_safe_equal.js: OR of XORs, no early exit).
 */
export function timingSafeEqualText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/** The `webhook-signature` header value: one `v1,<base64>` per key. */
export function sign(keys: SigningKey[], content: SignedContent): string {
  return keys.map((key) => `v1,${signatureFor(key, content)}`).join(" ");
}

export interface WebhookHeaders {
  id: string | null;
  timestamp: string | null;
  signature: string | null;
}

export type VerifyResult =
  | { ok: true; id: string; timestamp: number }
  | { ok: false; reason: string };

const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
// Whole seconds, no sign, no leading zero, no decimals, at most 12 digits.
const TIMESTAMP_PATTERN = /^[1-9][0-9]{0,11}$/;
const SIGNATURE_LENGTH = 44; // base64 of a 32-byte HMAC-SHA256
const SIGNATURE_ENTRY = /^v[0-9]+[a-z]*,[A-Za-z0-9+/]*={0,2}$/;
const MAX_SIGNATURE_HEADER = 1024;
const MAX_SIGNATURES = 8;

export interface VerifyOptions {
  /** The current time in unix seconds. */
  nowSeconds: number;
  toleranceSeconds?: number;
}

/**
 * Verifies the three `webhook-*` headers against the raw body bytes. Checks run
 * cheapest first: header shapes, timestamp window, then the HMAC of each key
 * against each `v1` signature (other versions are ignored, as the spec says).
 */
export function verify(
  keys: SigningKey[],
  headers: WebhookHeaders,
  payload: Uint8Array,
  options: VerifyOptions,
): VerifyResult {
  const { id, timestamp, signature } = headers;
  if (id === null || timestamp === null || signature === null) {
    return {
      ok: false,
      reason: "missing webhook-id, webhook-timestamp or webhook-signature header",
    };
  }
  if (!ID_PATTERN.test(id)) return { ok: false, reason: "malformed webhook-id" };
  if (!TIMESTAMP_PATTERN.test(timestamp)) {
    return { ok: false, reason: "malformed webhook-timestamp" };
  }
  if (signature.length > MAX_SIGNATURE_HEADER) {
    return { ok: false, reason: "webhook-signature header too long" };
  }
  const candidates = signature.split(" ");
  if (candidates.length > MAX_SIGNATURES) {
    return { ok: false, reason: "too many signatures in webhook-signature" };
  }
  const seconds = Number(timestamp);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (!Number.isFinite(options.nowSeconds) || !Number.isFinite(tolerance)) {
    throw new TypeError("Cannot verify signature: clock or tolerance is not a finite number");
  }
  if (!(Math.abs(options.nowSeconds - seconds) <= tolerance)) {
    return { ok: false, reason: "timestamp outside tolerance" };
  }
  // Unknown versions are ignored (the spec), but a malformed entry refuses the whole
  // header: two header lines joined as "a, b" must not pass or fail by their order.
  if (candidates.some((entry) => entry !== "" && !SIGNATURE_ENTRY.test(entry))) {
    return { ok: false, reason: "malformed entry in webhook-signature" };
  }
  const v1Signatures = candidates
    .filter((entry) => entry.startsWith("v1,") && entry.length === 3 + SIGNATURE_LENGTH)
    .map((entry) => entry.slice(3));
  if (v1Signatures.length === 0) return { ok: false, reason: "no v1 signature" };

  const content = { id, timestamp: seconds, payload };
  for (const key of keys) {
    // Compare the base64 text, not decoded bytes: base64 decoders accept several
    // spellings of the same bytes, and a changed signature byte must never pass.
    const expected = signatureFor(key, content);
    for (const candidate of v1Signatures) {
      if (timingSafeEqualText(candidate, expected)) return { ok: true, id, timestamp: seconds };
    }
  }
  return { ok: false, reason: "no signature matches a key of the keyring" };
}
