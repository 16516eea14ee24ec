/**
 * The claims body of a signed auto-sync request: what the verifier checks. Built by
 * signed_request.ts (TypeScript) and auto_sync.request_claims (SQL).
 */
import { z } from "zod";
import { REQUEST_LIFETIME_SECONDS } from "./wire_limits.ts";

export const AUDIENCE = "cron-auto-sync";
export const SCOPE = "import-emails";

const unixSeconds = z.int().min(0).max(2 ** 40);

/**
 * Whether the top-level JSON object repeats a key. `text` is valid JSON (already
 * parsed); nested values only matter for skipping, since the schema allows none.
 */
export function hasDuplicateTopLevelKey(text: string): boolean {
  const keys = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === "{" || char === "[") depth++;
    else if (char === "}" || char === "]") depth--;
    else if (char === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      const literal = text.slice(i, end + 1);
      i = end;
      if (depth !== 1) continue;
      let next = i + 1;
      while (/\s/.test(text[next] ?? "")) next++;
      if (text[next] !== ":") continue; // a value, not a key
      const key = JSON.parse(literal) as string;
      if (keys.has(key)) return true;
      keys.add(key);
    }
  }
  return false;
}

export const claimsSchema = z.strictObject({
  aud: z.string().max(64),
  scope: z.string().max(64),
  sub: z.uuid(),
  run_id: z.uuid(),
  iat: unixSeconds,
  exp: unixSeconds,
});

export type Claims = z.infer<typeof claimsSchema>;

export type ClaimsCheck =
  | { ok: true; claims: Claims }
  | { ok: false; status: 400 | 403; reason: string };

/**
 * Parses the (already signature-verified) body and checks what it claims:
 * shape and consistency with the headers (400), then audience, scope and expiry (403).
 */
export function checkClaims(
  body: Uint8Array,
  expected: { requestId: string; timestamp: number; nowSeconds: number },
): ClaimsCheck {
  let json: unknown;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
    json = JSON.parse(text);
  } catch {
    return { ok: false, status: 400, reason: "body is not UTF-8 JSON" };
  }
  // JSON.parse keeps the last of two equal keys, other parsers the first: a body
  // that two parsers could read differently is refused, signed or not.
  if (hasDuplicateTopLevelKey(text)) {
    return { ok: false, status: 400, reason: "duplicate key in claims" };
  }
  const parsed = claimsSchema.safeParse(json);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((issue) => issue.path.join(".") || "(root)").join(", ");
    return { ok: false, status: 400, reason: `claims failing the schema: ${fields}` };
  }
  const claims = parsed.data;
  if (claims.run_id !== expected.requestId) {
    return { ok: false, status: 400, reason: "webhook-id differs from run_id" };
  }
  if (claims.iat !== expected.timestamp) {
    return { ok: false, status: 400, reason: "webhook-timestamp differs from iat" };
  }
  if (claims.exp <= claims.iat) {
    return { ok: false, status: 400, reason: "exp is not after iat" };
  }
  if (claims.exp - claims.iat > REQUEST_LIFETIME_SECONDS) {
    return {
      ok: false,
      status: 400,
      reason: `exp more than ${REQUEST_LIFETIME_SECONDS} s after iat`,
    };
  }
  if (claims.aud !== AUDIENCE) return { ok: false, status: 403, reason: "wrong audience" };
  if (claims.scope !== SCOPE) return { ok: false, status: 403, reason: "wrong scope" };
  if (claims.exp <= expected.nowSeconds) return { ok: false, status: 403, reason: "expired" };
  return { ok: true, claims };
}
