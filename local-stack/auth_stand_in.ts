/**
 * Supabase Auth STAND-IN (local stack only), at $SUPABASE_URL/auth/v1 on the gateway:
 *   GET /auth/v1/.well-known/jwks.json   the project's public signing keys
 *   GET /auth/v1/user                    the user a token belongs to, as GoTrue
 *                                        answers it: an API key in `apikey`, a token
 *                                        signed by the project, a user that exists
 * It fails where Auth fails: a bad signature, an expired token, another project's
 * token or a deleted user get GoTrue's 401/403 answers.
 */
import { type JWTPayload, jwtVerify } from "jose";
import type postgres from "postgres";
import { type ProjectMode, publishedKeys, type StackProject } from "./project.ts";

/**
 * A token signed by the project, as Auth checks it:
 * HS256 with the legacy secret in every mode (a migrated project keeps trusting it
 * until it is revoked), ES256 with the signing key on projects that have one.
 */
export async function verifyProjectToken(
  token: string,
  options: { project: StackProject; mode: ProjectMode },
): Promise<JWTPayload | null> {
  const { project, mode } = options;
  const keys = publishedKeys(project, mode);
  try {
    const [header] = token.split(".");
    const { alg, kid } = JSON.parse(atob(header.replaceAll("-", "+").replaceAll("_", "/")));
    if (alg === "HS256") {
      const secret = new TextEncoder().encode(project.jwtSecret);
      return (await jwtVerify(token, secret, { algorithms: ["HS256"] })).payload;
    }
    const key = keys.find((candidate) => candidate.kid === kid && candidate.alg === alg);
    if (!key) return null;
    return (await jwtVerify(token, key, { algorithms: [alg] })).payload;
  } catch {
    return null;
  }
}

const goTrueError = (status: number, errorCode: string, msg: string) =>
  Response.json({ code: status, error_code: errorCode, msg }, { status });

export function createAuthStandIn(options: {
  project: StackProject;
  mode: ProjectMode;
  sql?: postgres.Sql;
}) {
  const { project, mode, sql } = options;
  const apiKeys = new Set([
    project.anonKey,
    project.serviceRoleKey,
    ...(mode === "self-hosted" ? [] : [project.publishableKey, project.secretKey]),
  ]);

  async function user(request: Request): Promise<Response> {
    const apiKey = request.headers.get("apikey");
    if (!apiKey) return Response.json({ message: "No API key found in request" }, { status: 401 });
    if (!apiKeys.has(apiKey)) return Response.json({ message: "Invalid API key" }, { status: 401 });
    const token = request.headers.get("authorization")?.match(/^Bearer (\S+)$/)?.[1];
    if (!token) {
      return goTrueError(401, "no_authorization", "This endpoint requires a Bearer token");
    }
    const claims = await verifyProjectToken(token, { project, mode });
    if (!claims) {
      return goTrueError(403, "bad_jwt", "invalid JWT: unable to parse or verify signature");
    }
    if (typeof claims.sub !== "string" || !sql) {
      return goTrueError(403, "bad_jwt", "invalid claim: missing sub claim");
    }
    const [found] = await sql`
      select id, email from auth.users where id::text = ${claims.sub}`;
    if (!found) {
      return goTrueError(403, "user_not_found", "User from sub claim in JWT does not exist");
    }
    return Response.json({ id: found.id, aud: claims.aud, role: claims.role, email: found.email });
  }

  /** Answers the Auth routes; null for any other path. */
  return (request: Request): Promise<Response> | null => {
    const { pathname } = new URL(request.url);
    if (pathname === "/auth/v1/.well-known/jwks.json" && request.method === "GET") {
      return Promise.resolve(Response.json({ keys: publishedKeys(project, mode) }));
    }
    if (pathname === "/auth/v1/user" && request.method === "GET") return user(request);
    if (pathname.startsWith("/auth/v1/")) {
      return Promise.resolve(goTrueError(404, "not_found", "Not found (Auth stand-in)"));
    }
    return null;
  };
}
