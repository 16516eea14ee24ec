/**
 * Verifies a signed-in user's access token (the `Authorization: Bearer` JWT) with
 * Supabase's own client, `supabase.auth.getClaims()`:
 *   - a token signed with the project's asymmetric key (ES256/RS256) is verified
 *     here, against SUPABASE_JWKS (read by platform/config.ts). A key id missing from it sends the
 *     library to $SUPABASE_URL/auth/v1/.well-known/jwks.json (key rotation).
 *   - a token signed with the legacy HS256 secret (hosted projects not migrated to
 *     signing keys, self-hosted Supabase) is checked by Supabase Auth itself
 *     ($SUPABASE_URL/auth/v1/user): the function never holds the JWT secret.
 * On top of a valid signature, only `authenticated` tokens for the `authenticated`
 * audience, with a uuid `sub` and an `exp` still ahead of the injected clock, pass.
 */
import { createClient, type JWK } from "@supabase/supabase-js";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { z } from "zod";
import type { UserAuthConfig } from "../platform/config.ts";
import type { Logger } from "../platform/log.ts";

export type UserAuthenticator = (
  authorization: string | null,
) => Promise<{ userId: string } | null>;

/** The algorithms Supabase Auth signs user tokens with. */
const USER_TOKEN_ALGORITHMS = new Set(["ES256", "RS256", "HS256"]);
const BEARER = /^bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/i;

const userClaims = z.object({
  sub: z.uuid(),
  role: z.literal("authenticated"),
  aud: z.union([
    z.literal("authenticated"),
    z.array(z.string()).refine((aud) => aud.includes("authenticated")),
  ]),
  exp: z.number(),
});

export function createUserAuthenticator(
  config: UserAuthConfig,
  options: { now?: () => Date; fetch?: typeof fetch; log?: Logger } = {},
): UserAuthenticator {
  const jwks = { keys: config.jwks as JWK[] };
  const supabase = createClient(config.supabaseUrl, config.apiKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    ...(options.fetch ? { global: { fetch: options.fetch } } : {}),
  });
  const nowSeconds = () => (options.now?.() ?? new Date()).getTime() / 1000;

  // Refuses, without a network call, what cannot be a valid user token anyway.
  const plausible = (token: string) => {
    const { alg } = decodeProtectedHeader(token);
    const claims = userClaims.safeParse(decodeJwt(token));
    return USER_TOKEN_ALGORITHMS.has(alg ?? "") && claims.success &&
      claims.data.exp > nowSeconds();
  };

  return async (authorization) => {
    const token = authorization?.match(BEARER)?.[1];
    if (!token) return null;
    try {
      if (!plausible(token)) return null;
      // allowExpired: the expiry is checked below against the injected clock
      // (Auth checks it again for HS256 tokens).
      const { data, error } = await supabase.auth.getClaims(token, { jwks, allowExpired: true });
      // Auth down or unreachable refuses too (fail closed), but is the operator's to know.
      if (error && (error.name === "AuthRetryableFetchError" || (error.status ?? 0) >= 500)) {
        options.log?.error("Cannot verify a user token: Supabase Auth did not answer", {
          status: error.status ?? null,
        });
      }
      if (error || !data) return null;
      const claims = userClaims.safeParse(data.claims);
      return claims.success && claims.data.exp > nowSeconds() ? { userId: claims.data.sub } : null;
    } catch {
      return null;
    }
  };
}
