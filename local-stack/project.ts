/**
 * The local stack's "project": the keys Supabase holds for a project and never hands
 * to a function as such. Written once per stack by provision_keys.ts to
 * .stack/project.json (mode 600); the gateway derives from it what each project mode
 * injects into the functions and what its Auth stand-in accepts.
 *
 * Project modes (what the gateway emulates; see README "Platform facts"):
 *   hosted-asymmetric  hosted project with JWT signing keys: Auth signs ES256,
 *                      SUPABASE_JWKS holds the public key (a bare array)
 *   hosted-legacy      hosted project still on the legacy JWT secret: Auth signs
 *                      HS256, SUPABASE_JWKS is an empty array
 *   self-hosted        docker-compose Supabase: Auth signs HS256 with JWT_SECRET,
 *                      which the functions container gets; functions run behind the
 *                      edge runtime's `main` router
 */
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";

export type ProjectMode = "hosted-asymmetric" | "hosted-legacy" | "self-hosted";
export const PROJECT_MODES: ProjectMode[] = ["hosted-asymmetric", "hosted-legacy", "self-hosted"];

export interface StackProject {
  /** The legacy HS256 JWT secret (self-hosted: JWT_SECRET). */
  jwtSecret: string;
  /** The ES256 signing key of a project on asymmetric keys. */
  signingKey: { privateJwk: JWK; publicJwk: JWK };
  /** Legacy API keys: HS256 JWTs for the anon and service_role roles. */
  anonKey: string;
  serviceRoleKey: string;
  /** New API keys. */
  publishableKey: string;
  secretKey: string;
}

export function parseProjectMode(value: string): ProjectMode {
  if (!PROJECT_MODES.includes(value as ProjectMode)) {
    throw new Error(`Unknown project mode "${value}": expected one of ${PROJECT_MODES.join(", ")}`);
  }
  return value as ProjectMode;
}

const randomText = (bytes: number) =>
  btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes))))
    .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

/** An HS256 API key as Supabase issues legacy keys: role, issuer, ten years. */
function legacyApiKey(role: string, secret: string): Promise<string> {
  return new SignJWT({ role, iss: "supabase" })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt()
    .setExpirationTime("10y")
    .sign(new TextEncoder().encode(secret));
}

export async function createProject(): Promise<StackProject> {
  const jwtSecret = randomText(32);
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = crypto.randomUUID();
  return {
    jwtSecret,
    signingKey: {
      privateJwk: { ...(await exportJWK(privateKey)), kid, alg: "ES256" },
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" },
    },
    anonKey: await legacyApiKey("anon", jwtSecret),
    serviceRoleKey: await legacyApiKey("service_role", jwtSecret),
    publishableKey: `sb_publishable_${randomText(16)}`,
    secretKey: `sb_secret_${randomText(16)}`,
  };
}

export function readProject(path: string): StackProject {
  try {
    return JSON.parse(Deno.readTextFileSync(path));
  } catch (error) {
    throw new Error(
      `Cannot read the stack's project keys "${path}" (a stack older than them: scripts/stack reset)`,
      { cause: error },
    );
  }
}

/** The public keys Auth publishes at /auth/v1/.well-known/jwks.json in this mode. */
export function publishedKeys(project: StackProject, mode: ProjectMode): JWK[] {
  return mode === "hosted-asymmetric" ? [project.signingKey.publicJwk] : [];
}
