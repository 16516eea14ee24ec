/**
 * Mail providers as configuration: where to send the user, where to redeem and refresh
 * tokens, what to ask for, and which IMAP server the tokens open. Endpoints come only from
 * these presets or from the operator's configuration (an issuer whose OpenID discovery
 * document is fetched, bounded); never from a user's input.
 */
import * as oauth from "oauth4webapi";
import {
  boundedFetch,
  defaultFetchBounds,
  type FetchBounds,
  isAllowedEndpoint,
} from "./bounded_fetch.ts";
import { TokenRequestError } from "./oauth_errors.ts";
import { TENANT_PLACEHOLDER } from "./tenant_issuer.ts";

export type OAuthProvider = {
  /** A name for logs and the database (no secret): "google", "microsoft", or the operator's. */
  name: string;
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  /** RFC 7009 revocation, where the provider offers it (Google does, Microsoft does not). */
  revocationEndpoint?: string;
  scopes: string[];
  /** Extra authorization-request parameters (offline access, consent). */
  authorizationParams: Record<string, string>;
  imap: { host: string; port: number };
  /** Plain http to a loopback host is allowed (a local authorization server only). */
  allowLoopbackHttp?: boolean;
};

/** What a provider is asked for and opens, apart from its endpoints. */
export type ProviderProfile = Pick<
  OAuthProvider,
  "name" | "scopes" | "authorizationParams" | "imap"
>;

/**
 * Gmail: the restricted scope https://mail.google.com/ (Google verifies apps that use it in
 * production); a refresh token needs access_type=offline, and prompt=consent so one comes
 * back on every connect, not only the first. Google's refresh tokens do not rotate.
 */
export const googleProfile: ProviderProfile = {
  name: "google",
  scopes: ["openid", "email", "https://mail.google.com/"],
  authorizationParams: { access_type: "offline", prompt: "consent" },
  imap: { host: "imap.gmail.com", port: 993 },
};

export function googleProvider(): OAuthProvider {
  return {
    ...googleProfile,
    issuer: "https://accounts.google.com",
    authorizationEndpoint: "https://accounts.google.com/o/oauth2/v2/auth",
    tokenEndpoint: "https://oauth2.googleapis.com/token",
    revocationEndpoint: "https://oauth2.googleapis.com/revoke",
  };
}

/**
 * Microsoft 365 / Outlook.com: IMAP's delegated scope plus offline_access (a refresh token,
 * which rotates on use). prompt=consent as the local stack's Microsoft-shaped client needs it.
 */
export const microsoftProfile: ProviderProfile = {
  name: "microsoft",
  scopes: ["openid", "email", "offline_access", "https://outlook.office.com/IMAP.AccessAsUser.All"],
  authorizationParams: { prompt: "consent" },
  imap: { host: "outlook.office365.com", port: 993 },
};

/** A tenant: common, organizations, consumers, a tenant id (GUID) or a verified domain. */
export const MICROSOFT_TENANT =
  /^(common|organizations|consumers|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z0-9-]+(\.[a-z0-9-]+)+)$/i;

export function microsoftProvider(options: { tenant?: string } = {}): OAuthProvider {
  const tenant = options.tenant ?? "common";
  if (!MICROSOFT_TENANT.test(tenant)) throw new Error(`Invalid Microsoft tenant "${tenant}"`);
  const base = `https://login.microsoftonline.com/${tenant}`;
  // Through the shared tenants each token names its user's own tenant (tenant_issuer.ts).
  const shared = /^(common|organizations|consumers)$/i.test(tenant);
  return {
    ...microsoftProfile,
    issuer: shared
      ? `https://login.microsoftonline.com/${TENANT_PLACEHOLDER}/v2.0`
      : `${base}/v2.0`,
    authorizationEndpoint: `${base}/oauth2/v2.0/authorize`,
    tokenEndpoint: `${base}/oauth2/v2.0/token`,
  };
}

/**
 * A provider from its issuer's OpenID discovery document (operator configuration: the
 * function's secrets or settings, never a user's input). The document must name the same
 * issuer (oauth4webapi checks) and https endpoints.
 */
export async function discoverProvider(
  issuer: string,
  profile: ProviderProfile,
  bounds: FetchBounds = defaultFetchBounds,
): Promise<OAuthProvider> {
  const issuerUrl = new URL(issuer);
  const options = {
    [oauth.customFetch]: (url: string, init: RequestInit) =>
      boundedFetch(url, init, { ...bounds, requireJson: true }),
    [oauth.allowInsecureRequests]: bounds.allowLoopbackHttp === true,
  };
  let metadata: oauth.AuthorizationServer;
  try {
    const response = await oauth.discoveryRequest(issuerUrl, { ...options, algorithm: "oidc" });
    metadata = await oauth.processDiscoveryResponse(issuerUrl, response);
  } catch (error) {
    if (error instanceof TokenRequestError) throw error;
    throw new TokenRequestError("invalid_response", "Provider discovery document unusable");
  }
  const endpoint = (value: string | undefined) => {
    if (value === undefined) return undefined;
    const url = new URL(value);
    if (!isAllowedEndpoint(url, bounds.allowLoopbackHttp)) {
      throw new TokenRequestError("invalid_response", "Provider endpoint must be https");
    }
    return url.href;
  };
  const authorizationEndpoint = endpoint(metadata.authorization_endpoint);
  const tokenEndpoint = endpoint(metadata.token_endpoint);
  if (!authorizationEndpoint || !tokenEndpoint) {
    throw new TokenRequestError("invalid_response", "Provider discovery document lacks endpoints");
  }
  return {
    ...profile,
    issuer: metadata.issuer,
    authorizationEndpoint,
    tokenEndpoint,
    revocationEndpoint: endpoint(metadata.revocation_endpoint),
    allowLoopbackHttp: bounds.allowLoopbackHttp,
  };
}
