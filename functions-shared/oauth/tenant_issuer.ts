/**
 * Microsoft's multi-tenant issuer. Through `common`, `organizations` or `consumers` an ID
 * token's `iss` is `https://login.microsoftonline.com/{tid}/v2.0` for the tenant of the user
 * who signed in, not one fixed value; the discovery document says so with a `{tenantid}`
 * template. The expected issuer is the template with the token's own `tid`, which must be a
 * GUID (Microsoft identity platform, "ID token claims reference": iss, tid).
 */
import { TokenRequestError } from "./oauth_errors.ts";

export const TENANT_PLACEHOLDER = "{tenantid}";

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether an issuer is a template to fill with each token's tenant. */
export function isTenantTemplate(issuer: string): boolean {
  return issuer.includes(TENANT_PLACEHOLDER);
}

/** The issuer one ID token must name: the template with its `tid`; refused when tid is no GUID. */
export function tenantIssuer(template: string, claims: { tid?: unknown }): string {
  if (typeof claims.tid !== "string" || !GUID.test(claims.tid)) {
    throw new TokenRequestError("invalid_response", "ID token has no valid tenant");
  }
  return template.replace(TENANT_PLACEHOLDER, claims.tid.toLowerCase());
}

const ADDRESS = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * The mailbox address an ID token names: `email`, else `preferred_username` when it is an
 * address (Microsoft sends no `email` without the optional claim). preferred_username is
 * mutable and unverified, so it is only ever an IMAP username (the provider's server still
 * decides what the token opens), never an identity to compare with a user's email.
 */
export function mailboxAddress(claims: { email?: string; preferredUsername?: string }) {
  if (claims.email) return claims.email;
  const name = claims.preferredUsername;
  return name && ADDRESS.test(name) ? name : undefined;
}
