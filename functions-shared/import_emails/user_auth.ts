/**
 * Verifies a signed-in user's access token (the `Authorization: Bearer` JWT) with
 * Supabase's own client, `supabase.auth.getClaims()`:
 *   - a token signed with the project's asymmetric key (ES256/RS256) is verified
 *     here, against the project's published keys (signing_keys.ts: SUPABASE_JWKS, read
 *     by platform/config.ts, refreshed from Auth at most once a minute for a key
 *     rotation). A key id the project does not publish is refused with no network call.
 *   - a token signed with the legacy HS256 secret (hosted projects not migrated to
 *     signing keys, self-hosted Supabase) is checked by Supabase Auth itself
 *     ($SUPABASE_URL/auth/v1/user): the function never holds the JWT secret.
 * On top of a valid signature, only `authenticated` tokens for the `authenticated`
 * audience, with a uuid `sub` and an `exp` still ahead of the injected clock, pass.
 * The platform's verify_jwt is off for this function (config.toml), so every forged
 * token reaches it: whatever cannot be the project's (malformed, another algorithm, an
 * asymmetric token without a key id or with one the project does not publish, claims
 * no user token has) is refused before any outbound call. The issuer is not checked:
 * it is public (any real token shows it), and no setting names it (custom domains;
 * self-hosted SUPABASE_URL is the internal http://kong:8000).
 */
import { createClient, type JWK } from "@supabase/supabase-js";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { z } from "zod";
import type { UserAuthConfig } from "../platform/config.ts";
import type { Logger } from "../platform/log.ts";
import { createSigningKeys } from "./signing_keys.ts";

/** A verified user: their id, and whether Supabase Auth signed them in anonymously. */
export interface AuthenticatedUser {
  userId: string;
  isAnonymous: boolean;
  /** The token's `email` claim, when it has one. */
  email?: string;
  /** The sign-in providers Supabase Auth lists in `app_metadata.providers` (google, azure...). */
  providers?: string[];
}

export type UserAuthenticator = (
  authorization: string | null,
) => Promise<AuthenticatedUser | null>;

/** The asymmetric algorithms Supabase Auth signs user tokens with (and HS256, the legacy secret). */
const ASYMMETRIC_ALGORITHMS = new Set(["ES256", "RS256"]);
const BEARER = /^bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/i;

const userClaims = z.object({
  sub: z.uuid(),
  role: z.literal("authenticated"),
  aud: z.union([
    z.literal("authenticated"),
    z.array(z.string()).refine((aud) => aud.includes("authenticated")),
  ]),
  exp: z.number(),
  is_anonymous: z.boolean().optional(),
  email: z.string().max(320).optional().catch(undefined),
  app_metadata: z.object({ providers: z.array(z.string().max(100)).max(20).optional() })
    .optional().catch(undefined),
});

export function createUserAuthenticator(
  config: UserAuthConfig,
  options: { now?: () => Date; fetch?: typeof fetch; log?: Logger; jwksRefreshMs?: number } = {},
): UserAuthenticator {
  const nowMs = () => (options.now?.() ?? new Date()).getTime();
  const signingKeys = createSigningKeys(config.jwks, {
    supabaseUrl: config.supabaseUrl,
    apiKey: config.apiKey,
    fetch: options.fetch,
    now: nowMs,
    refreshIntervalMs: options.jwksRefreshMs,
  });
  const supabase = createClient(config.supabaseUrl, config.apiKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    ...(options.fetch ? { global: { fetch: options.fetch } } : {}),
  });
  const nowSeconds = () => nowMs() / 1000;

  /**
   * What the library may verify the token with, or null to refuse it now, without a
   * network call: an asymmetric token only with the published key its kid names (so the
   * library never fetches), HS256 with none (Auth checks it: the function has no secret).
   */
  const verificationKeys = async (token: string): Promise<{ keys: JWK[] } | null> => {
    const { alg, kid } = decodeProtectedHeader(token);
    const claims = userClaims.safeParse(decodeJwt(token));
    if (!claims.success || claims.data.exp <= nowSeconds()) return null;
    if (alg === "HS256") return { keys: [] };
    if (!ASYMMETRIC_ALGORITHMS.has(alg ?? "") || typeof kid !== "string" || !kid) return null;
    const key = await signingKeys.find(kid);
    return key && (key.alg === undefined || key.alg === alg) ? { keys: [key as JWK] } : null;
  };

  return async (authorization) => {
    const token = authorization?.match(BEARER)?.[1];
    if (!token) return null;
    try {
      const jwks = await verificationKeys(token);
      if (!jwks) return null;
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
      if (!claims.success || claims.data.exp <= nowSeconds()) return null;
      const { email, app_metadata } = claims.data;
      return {
        userId: claims.data.sub,
        isAnonymous: claims.data.is_anonymous === true,
        ...(email ? { email } : {}),
        ...(app_metadata?.providers ? { providers: app_metadata.providers } : {}),
      };
    } catch {
      return null;
    }
  };
}
