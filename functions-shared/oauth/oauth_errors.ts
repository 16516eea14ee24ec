/**
 * What can go wrong talking to a provider's token endpoint, as the importer must treat it.
 * No message ever holds a token, a secret, or the provider's own text (a hostile provider
 * could put anything there): only fixed words and a checked OAuth error code.
 */

/**
 * The grant is gone (`invalid_grant`: expired, revoked, reused after rotation, password
 * changed; or the provider wants the user back, `interaction_required`). Retrying cannot help:
 * the mailbox needs the user to connect again.
 */
export class ReconnectNeededError extends Error {
  override name = "ReconnectNeededError";
  constructor(readonly oauthError: string) {
    super(`Reconnect needed: the provider refused the grant ("${oauthError}")`);
  }
}

/**
 * Any other failure. `transient` (timeouts, network errors, 5xx, oversized or cut-off or
 * non-JSON answers, `temporarily_unavailable`) may pass on a later try; `client` means the
 * operator's client registration is wrong (`invalid_client`, `unauthorized_client`...);
 * `invalid_response` means the provider answered 200 with something that is not a usable
 * token (wrong token_type, missing fields).
 */
export class TokenRequestError extends Error {
  override name = "TokenRequestError";
  constructor(
    readonly kind: "transient" | "client" | "invalid_response",
    message: string,
  ) {
    super(message);
  }
}

const RECONNECT_CODES = new Set(["invalid_grant", "interaction_required", "consent_required"]);
const CLIENT_CODES = new Set([
  "invalid_client",
  "unauthorized_client",
  "unsupported_grant_type",
  "invalid_scope",
  "invalid_request",
]);

/** An OAuth error code as a provider sent it, or "unknown" when it is not a plain code. */
export function safeErrorCode(value: unknown): string {
  return typeof value === "string" && /^[a-z_]{1,64}$/.test(value) ? value : "unknown";
}

/** The error for an OAuth error response (RFC 6749 section 5.2) with this HTTP status. */
export function errorForOAuthResponse(status: number, code: unknown): Error {
  const error = safeErrorCode(code);
  if (RECONNECT_CODES.has(error)) return new ReconnectNeededError(error);
  if (CLIENT_CODES.has(error)) {
    return new TokenRequestError("client", `Token endpoint refused the client ("${error}")`);
  }
  return new TokenRequestError(
    "transient",
    `Token endpoint answered ${status} ("${error}")`,
  );
}
