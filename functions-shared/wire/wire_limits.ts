/**
 * The limits of the signed-request wire format, TypeScript's one home for them.
 * SQL's is `auto_sync.wire_limit(name)` (supabase/migrations/..._auto_sync_tables.sql);
 * both are asserted equal to `tests/fixtures/wire_vectors.json` (signed_request_test.ts, pgTAP
 * wire_vectors_test.sql), so a key Vault signs with is a key the function accepts.
 */

/** Decoded length of a `whsec_` key, in bytes: at least 24 (192 bits)... */
export const SIGNING_KEY_MIN_BYTES = 24;
/** ...and at most 64 (HMAC-SHA256's block size; longer keys are hashed first). */
export const SIGNING_KEY_MAX_BYTES = 64;
/** Keys in use at once: the current one, the next one, and one being retired. */
export const MAX_SIGNING_KEYS = 3;
/**
 * How long a request may live (exp - iat) and how far its timestamp may be from
 * the verifier's clock, either side: the replay ledger keeps ids twice as long.
 */
export const REQUEST_LIFETIME_SECONDS = 300;
