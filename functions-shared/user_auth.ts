/**
 * Verifies a signed-in user's access token (the `Authorization: Bearer` JWT).
 *
 * Supabase projects sign user tokens either with asymmetric keys published as
 * SUPABASE_JWKS (injected into Edge Functions) or, on older projects, with the
 * legacy HS256 JWT secret (set it as SUPABASE_JWT_SECRET). Only tokens for the
 * `authenticated` role with a user id in `sub` are accepted.
 */
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  type JSONWebKeySet,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import { z } from "zod";

export type UserAuthenticator = (
  authorization: string | null,
) => Promise<{ userId: string } | null>;

const ASYMMETRIC_ALGORITHMS = ["ES256", "RS256", "EdDSA"];
const userClaims = z.object({ sub: z.uuid(), role: z.literal("authenticated") });

export function createUserAuthenticator(
  env: { SUPABASE_JWKS?: string; SUPABASE_JWT_SECRET?: string },
  options: { now?: () => Date } = {},
): UserAuthenticator {
  let jwks: JWTVerifyGetKey | null = null;
  if (env.SUPABASE_JWKS) {
    let keySet: JSONWebKeySet | null = null;
    try {
      const parsed = JSON.parse(env.SUPABASE_JWKS);
      // Hosted projects inject a bare array of keys; the CLI and RFC 7517 use {"keys": [...]}.
      keySet = Array.isArray(parsed) ? { keys: parsed } : parsed as JSONWebKeySet;
    } catch { /* reported below */ }
    if (!Array.isArray(keySet?.keys) || keySet.keys.length === 0) {
      throw new Error(
        'Invalid SUPABASE_JWKS: expected keys as a JSON array ([...]) or a key set ({"keys": [...]})',
      );
    }
    jwks = createLocalJWKSet(keySet);
  }
  const secret = env.SUPABASE_JWT_SECRET ? new TextEncoder().encode(env.SUPABASE_JWT_SECRET) : null;
  if (!jwks && !secret) {
    throw new Error("Missing SUPABASE_JWKS or SUPABASE_JWT_SECRET: cannot verify user tokens");
  }

  return async (authorization) => {
    const match = authorization?.match(
      /^bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/i,
    );
    if (!match) return null;
    const token = match[1];
    try {
      const { alg } = decodeProtectedHeader(token);
      const common = {
        audience: "authenticated",
        currentDate: options.now?.(),
        requiredClaims: ["exp", "sub"],
      };
      const { payload } = alg === "HS256" && secret
        ? await jwtVerify(token, secret, { ...common, algorithms: ["HS256"] })
        : jwks
        ? await jwtVerify(token, jwks, { ...common, algorithms: ASYMMETRIC_ALGORITHMS })
        : { payload: null };
      const claims = userClaims.safeParse(payload);
      return claims.success ? { userId: claims.data.sub } : null;
    } catch {
      return null;
    }
  };
}
