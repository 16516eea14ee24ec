/**
 * The local authorization server's clients, shaped like the real providers' (local stack only):
 *
 *   google-shape     scope https://mail.google.com/; a refresh token only when the request says
 *                    access_type=offline and prompt=consent; the refresh token does not rotate
 *   microsoft-shape  scope https://outlook.office.com/IMAP.AccessAsUser.All plus offline_access
 *                    (with prompt=consent); every refresh rotates the refresh token, and reusing
 *                    an old one is detected: the whole grant is revoked
 *   *-short          the same shapes with a short access-token lifetime, for expiry tests
 *   dovecot          Dovecot's oauth2 passdb: may only introspect access tokens
 *
 * Every mail client is confidential (client_secret_post, as Google and Microsoft take it)
 * and must use PKCE with S256.
 */

export type Shape = "google" | "microsoft";

export type MailClient = {
  clientId: string;
  shape: Shape;
  /** Access-token lifetime in seconds. */
  accessTokenTtl: number;
};

export const introspectionClientId = "dovecot";

export const shapeScopes: Record<Shape, string> = {
  google: "openid email https://mail.google.com/",
  microsoft: "openid email offline_access https://outlook.office.com/IMAP.AccessAsUser.All",
};

/** Google's and Microsoft's access tokens both last about an hour. */
export const defaultAccessTokenTtl = 3600;
export const defaultShortAccessTokenTtl = 3;

export function mailClients(options: { shortTtl: number }): MailClient[] {
  return (["google", "microsoft"] as const).flatMap((shape) => [
    { clientId: `${shape}-shape`, shape, accessTokenTtl: defaultAccessTokenTtl },
    { clientId: `${shape}-shape-short`, shape, accessTokenTtl: options.shortTtl },
  ]);
}

/** Google rotates no refresh token; Microsoft's identity platform replaces it on each use. */
export function rotatesRefreshToken(shape: Shape): boolean {
  return shape === "microsoft";
}
