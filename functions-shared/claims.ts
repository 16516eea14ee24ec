/** The claims body of a signed auto-sync request, as auto_sync.dispatch() builds it. */
import { z } from "zod";

export const AUDIENCE = "cron-auto-sync";
export const SCOPE = "import-emails";

const unixSeconds = z.int().min(0).max(2 ** 40);

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
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    return { ok: false, status: 400, reason: "body is not UTF-8 JSON" };
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
  if (claims.aud !== AUDIENCE) return { ok: false, status: 403, reason: "wrong audience" };
  if (claims.scope !== SCOPE) return { ok: false, status: 403, reason: "wrong scope" };
  if (claims.exp <= expected.nowSeconds) return { ok: false, status: 403, reason: "expired" };
  return { ok: true, claims };
}
