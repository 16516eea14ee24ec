/**
 * The platform's JWT check in front of a function (stand-in, local stack only), as each
 * kind of project runs it before the function sees the request; CORS preflights
 * (OPTIONS) are never checked. Null lets the request through; otherwise the platform's
 * own 401 answer.
 *
 * Hosted (`verify_jwt = true` for the function, the default): the legacy check. It
 * accepts only a token signed with the project's legacy HS256 secret (any role: the
 * anon key passes) and refuses everything else, user tokens signed with the project's
 * asymmetric signing keys (ES256/RS256) included, with 401
 * `{"code":401,"message":"Invalid JWT"}`, or `"Missing authorization header"` without
 * one (Supabase docs, troubleshooting "Edge Function 401 error response", and
 * guides/functions/auth: the check is deprecated with the new keys; turn it off and
 * verify in the function). The docs publish the body, not the headers: the stand-in
 * sends only `content-type: application/json`.
 *
 * Self-hosted (docker compose): the edge runtime's `main` router
 * (supabase/supabase docker/volumes/functions/main/index.ts) checks every function or
 * none, by `VERIFY_JWT === 'true'`: `Authorization: Bearer <token>` (exactly two
 * space-separated parts); HS256 verified with `JWT_SECRET`; ES256/RS256 against
 * `SUPABASE_JWKS` read only in the key-set form `{"keys": [...]}` (a bare array, the
 * form hosted injects, is no key set there: every such token is refused); any other
 * algorithm refused. Its answer: 401 `{code, message, msg}` with `Content-Type:
 * application/json` and `sb-error-code: <code>`.
 */
import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from "jose";

const jsonHeaders = { "content-type": "application/json" };

function hostedAnswer(message: string): Response {
  return new Response(JSON.stringify({ code: 401, message }), {
    status: 401,
    headers: jsonHeaders,
  });
}

/** The hosted platform's legacy `verify_jwt` check: HS256 with the legacy secret, nothing else. */
export async function hostedJwtCheck(
  request: Request,
  options: { legacySecret: string },
): Promise<Response | null> {
  if (request.method === "OPTIONS") return null;
  const authorization = request.headers.get("authorization");
  if (!authorization) return hostedAnswer("Missing authorization header");
  const token = authorization.match(/^Bearer (\S+)$/)?.[1];
  try {
    if (!token || decodeProtectedHeader(token).alg !== "HS256") return hostedAnswer("Invalid JWT");
    await jwtVerify(token, new TextEncoder().encode(options.legacySecret), {
      algorithms: ["HS256"],
    });
    return null;
  } catch {
    return hostedAnswer("Invalid JWT");
  }
}

function routerAnswer(code: string, message: string): Response {
  return new Response(JSON.stringify({ code, message, msg: message }), {
    status: 401,
    headers: { ...jsonHeaders, "sb-error-code": code },
  });
}

/** SUPABASE_JWKS as the `main` router reads it: a key set, else none. */
export function routerKeySet(raw: string | undefined): JSONWebKeySet | null {
  if (!raw) return null;
  try {
    const parsed = JSON.parse(raw);
    return Array.isArray(parsed?.keys) ? parsed as JSONWebKeySet : null;
  } catch {
    return null;
  }
}

/** The self-hosted `main` router's check, when its VERIFY_JWT is "true". */
export async function mainRouterJwtCheck(
  request: Request,
  options: { jwtSecret?: string; jwks?: string },
): Promise<Response | null> {
  if (request.method === "OPTIONS") return null;
  const authorization = request.headers.get("authorization");
  if (!authorization) {
    return routerAnswer("UNAUTHORIZED_NO_AUTH_HEADER", "Missing authorization header");
  }
  const parts = authorization.split(" ");
  if (parts[0] !== "Bearer" || parts.length !== 2 || !parts[1]) {
    return routerAnswer("UNAUTHORIZED_INVALID_JWT_FORMAT", "Invalid JWT format");
  }
  const token = parts[1];
  let alg: string | undefined;
  try {
    alg = decodeProtectedHeader(token).alg;
  } catch {
    return routerAnswer("UNAUTHORIZED_INVALID_JWT_FORMAT", "Invalid JWT format");
  }
  if (alg === "HS256") {
    if (!options.jwtSecret) return routerAnswer("UNAUTHORIZED_LEGACY_JWT", "Invalid JWT");
    try {
      await jwtVerify(token, new TextEncoder().encode(options.jwtSecret));
      return null;
    } catch {
      return routerAnswer("UNAUTHORIZED_LEGACY_JWT", "Invalid JWT");
    }
  }
  if (alg === "ES256" || alg === "RS256") {
    const keySet = routerKeySet(options.jwks);
    if (!keySet) return routerAnswer("UNAUTHORIZED_ASYMMETRIC_JWT", "Invalid JWT");
    try {
      await jwtVerify(token, createLocalJWKSet(keySet));
      return null;
    } catch {
      return routerAnswer("UNAUTHORIZED_ASYMMETRIC_JWT", "Invalid JWT");
    }
  }
  return routerAnswer(
    "UNAUTHORIZED_UNSUPPORTED_TOKEN_ALGORITHM",
    `Unsupported JWT algorithm ${alg}`,
  );
}
