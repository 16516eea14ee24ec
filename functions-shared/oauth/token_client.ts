/**
 * The OAuth client of one provider registration (oauth4webapi, a maintained standards client):
 * the authorization URL (PKCE S256 + state), the code exchange, the refresh-token grant and
 * revocation. Every call to the provider is bounded (bounded_fetch.ts); every failure is a
 * ReconnectNeededError or a TokenRequestError whose message holds no token and no provider
 * text. The client secret comes from the function's secrets, never from the database.
 */
import * as oauth from "oauth4webapi";
import { boundedFetch, defaultFetchBounds, type FetchBounds } from "./bounded_fetch.ts";
import { errorForOAuthResponse, TokenRequestError } from "./oauth_errors.ts";
import type { OAuthProvider } from "./providers.ts";
import { isTenantTemplate, tenantIssuer } from "./tenant_issuer.ts";

export type ClientCredentials = { clientId: string; clientSecret: string };

export type Tokens = {
  accessToken: string;
  /** When the access token stops working (ms since the epoch), from expires_in. */
  expiresAt: number;
  /** The refresh token to keep: a rotated one, or the one presented when none came back. */
  refreshToken: string | undefined;
  /** Whether the provider replaced the refresh token (store the new one atomically). */
  rotated: boolean;
  scope: string | undefined;
};

/** What an ID token says about its account; email only from the `email` claim. */
export type IdTokenClaims = { sub: string; email?: string; preferredUsername?: string };

export type AuthorizationRequest = {
  url: URL;
  /** Single use; bind it to the user and store it hashed until the callback. */
  state: string;
  /** Kept server side with the state; never sent to the browser. */
  codeVerifier: string;
};

/** Without expires_in, assume a short life: a needless refresh costs less than a failed login. */
const ASSUMED_LIFETIME_SECONDS = 300;

export type TokenClient = ReturnType<typeof createTokenClient>;

export function createTokenClient(
  provider: OAuthProvider,
  credentials: ClientCredentials,
  options: { bounds?: Partial<FetchBounds>; now?: () => number } = {},
) {
  const bounds: FetchBounds = {
    ...defaultFetchBounds,
    allowLoopbackHttp: provider.allowLoopbackHttp,
    ...options.bounds,
  };
  const now = options.now ?? Date.now;
  const as: oauth.AuthorizationServer = {
    issuer: provider.issuer,
    authorization_endpoint: provider.authorizationEndpoint,
    token_endpoint: provider.tokenEndpoint,
    revocation_endpoint: provider.revocationEndpoint,
  };
  if (isTenantTemplate(provider.issuer)) {
    // oauth4webapi's hook for a per-token issuer (the one its openid-client uses for Entra ID):
    // only the expected `iss` changes; audience, expiry and algorithm checks stay.
    const hook = (oauth as unknown as { _expectedIssuer?: symbol })._expectedIssuer;
    if (typeof hook !== "symbol") throw new Error("Multi-tenant issuers need oauth4webapi's hook");
    (as as unknown as Record<symbol, unknown>)[hook] = (result: { claims: { tid?: unknown } }) =>
      tenantIssuer(provider.issuer, result.claims);
  }
  const client: oauth.Client = { client_id: credentials.clientId };
  const clientAuth = oauth.ClientSecretPost(credentials.clientSecret);
  const requestOptions = {
    [oauth.customFetch]: (url: string, init: RequestInit) => boundedFetch(url, init, bounds),
    [oauth.allowInsecureRequests]: bounds.allowLoopbackHttp === true,
  };
  // Token answers are JSON only (RFC 6749 section 5); revocation answers may be empty.
  const tokenOptions = {
    ...requestOptions,
    [oauth.customFetch]: (url: string, init: RequestInit) =>
      boundedFetch(url, init, { ...bounds, requireJson: true }),
  };

  function tokens(body: oauth.TokenEndpointResponse, presented?: string): Tokens {
    if (body.token_type !== "bearer") {
      throw new TokenRequestError("invalid_response", "Token endpoint answered a non-Bearer token");
    }
    const lifetime = typeof body.expires_in === "number" && body.expires_in > 0
      ? body.expires_in
      : ASSUMED_LIFETIME_SECONDS;
    const refreshToken = body.refresh_token ?? presented;
    return {
      accessToken: body.access_token,
      expiresAt: now() + lifetime * 1000,
      refreshToken,
      rotated: presented !== undefined && refreshToken !== presented,
      scope: body.scope,
    };
  }

  /** Runs one token-endpoint call; oauth4webapi's errors (which may quote the body) become ours. */
  async function tokenCall<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof TokenRequestError) throw error;
      if (error instanceof oauth.ResponseBodyError) {
        throw errorForOAuthResponse(error.status, error.error);
      }
      if (error instanceof oauth.WWWAuthenticateChallengeError) {
        throw errorForOAuthResponse(error.status, error.cause[0]?.parameters.error);
      }
      if (error instanceof oauth.OperationProcessingError) {
        const status = (error.cause as { status?: unknown } | undefined)?.status;
        if (error.code === oauth.RESPONSE_IS_NOT_JSON || error.code === oauth.PARSE_ERROR) {
          throw new TokenRequestError("transient", "Token endpoint answer is not JSON");
        }
        if (error.code === oauth.RESPONSE_IS_NOT_CONFORM) {
          throw new TokenRequestError(
            "transient",
            `Token endpoint answered an unexpected status${
              typeof status === "number" ? ` ${status}` : ""
            }`,
          );
        }
        throw new TokenRequestError(
          "invalid_response",
          "Token endpoint answer is not a usable token",
        );
      }
      if (error instanceof oauth.UnsupportedOperationError) {
        throw new TokenRequestError(
          "invalid_response",
          "Token endpoint answered a non-Bearer token",
        );
      }
      throw new TokenRequestError(
        "invalid_response",
        "Token endpoint answer is not a usable token",
      );
    }
  }

  return {
    provider,

    /** The provider's authorization URL for a connect: PKCE S256, a fresh state, the preset's scopes. */
    async authorizationUrl(
      request: { redirectUri: string; loginHint?: string },
    ): Promise<AuthorizationRequest> {
      const codeVerifier = oauth.generateRandomCodeVerifier();
      const state = oauth.generateRandomState();
      const url = new URL(provider.authorizationEndpoint);
      const params: Record<string, string> = {
        client_id: credentials.clientId,
        response_type: "code",
        redirect_uri: request.redirectUri,
        scope: provider.scopes.join(" "),
        state,
        code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: "S256",
        ...provider.authorizationParams,
        ...(request.loginHint ? { login_hint: request.loginHint } : {}),
      };
      for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
      return { url, state, codeVerifier };
    },

    /**
     * Redeems the code the callback received. Checks the state first (a mismatch, a missing
     * code or an error from the provider is refused before any call), then the token answer;
     * returns the tokens and the ID token's claims when one came back (the mailbox address).
     */
    async exchangeCode(
      callback: { url: URL; expectedState: string; codeVerifier: string; redirectUri: string },
    ): Promise<{ tokens: Tokens; idTokenClaims?: IdTokenClaims }> {
      let params: URLSearchParams;
      try {
        params = oauth.validateAuthResponse(as, client, callback.url, callback.expectedState);
      } catch (error) {
        if (error instanceof oauth.AuthorizationResponseError) {
          throw errorForOAuthResponse(400, error.error);
        }
        throw new TokenRequestError("client", "Authorization response refused (state or code)");
      }
      return await tokenCall(async () => {
        const response = await oauth.authorizationCodeGrantRequest(
          as,
          client,
          clientAuth,
          params,
          callback.redirectUri,
          callback.codeVerifier,
          tokenOptions,
        );
        const body = await oauth.processAuthorizationCodeResponse(as, client, response);
        const claims = oauth.getValidatedIdTokenClaims(body);
        const result = tokens(body);
        if (!result.refreshToken) {
          throw new TokenRequestError("invalid_response", "Token endpoint gave no refresh token");
        }
        return {
          tokens: result,
          idTokenClaims: claims ? identity(claims) : undefined,
        };
      });
    },

    /**
     * The refresh-token grant. A rotated refresh token comes back in `refreshToken` with
     * `rotated`: the caller must store it (atomically, before using the access token), since
     * the old one may now be dead. ID tokens in the answer are ignored (the address is known
     * from the connect; a multi-tenant issuer cannot be checked against a fixed one).
     */
    async refresh(refreshToken: string): Promise<Tokens> {
      return await tokenCall(async () => {
        const response = await oauth.refreshTokenGrantRequest(
          as,
          client,
          clientAuth,
          refreshToken,
          tokenOptions,
        );
        const body = await oauth.processRefreshTokenResponse(
          as,
          client,
          await withoutIdToken(response),
        );
        return tokens(body, refreshToken);
      });
    },

    /**
     * The refresh-token grant, keeping the ID token the provider sends with it (OpenID Connect
     * Core 12.2), checked (issuer, audience, expiry) as at the code exchange: whose account the
     * token opens, for a refresh token handed over from elsewhere (Supabase Auth).
     */
    async refreshWithIdentity(
      refreshToken: string,
    ): Promise<{ tokens: Tokens; idTokenClaims?: IdTokenClaims }> {
      return await tokenCall(async () => {
        const response = await oauth.refreshTokenGrantRequest(
          as,
          client,
          clientAuth,
          refreshToken,
          tokenOptions,
        );
        const body = await oauth.processRefreshTokenResponse(as, client, response);
        const claims = oauth.getValidatedIdTokenClaims(body);
        return {
          tokens: tokens(body, refreshToken),
          idTokenClaims: claims ? identity(claims) : undefined,
        };
      });
    },

    /** RFC 7009 revocation, where the provider has an endpoint; false where it has none. */
    async revoke(token: string): Promise<boolean> {
      if (!provider.revocationEndpoint) return false;
      await tokenCall(async () => {
        const response = await oauth.revocationRequest(
          as,
          client,
          clientAuth,
          token,
          requestOptions,
        );
        await oauth.processRevocationResponse(response);
      });
      return true;
    },
  };
}

function identity(claims: oauth.IDToken): IdTokenClaims {
  return {
    sub: claims.sub,
    email: typeof claims.email === "string" ? claims.email : undefined,
    preferredUsername: typeof claims.preferred_username === "string"
      ? claims.preferred_username
      : undefined,
  };
}

/** The same answer without its id_token member (bodies are small: bounded_fetch read them). */
async function withoutIdToken(response: Response): Promise<Response> {
  if (response.status !== 200) return response;
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return new Response(text, { status: response.status, headers: response.headers });
  }
  if (body && typeof body === "object" && !Array.isArray(body)) {
    delete (body as Record<string, unknown>).id_token;
    return new Response(JSON.stringify(body), { status: 200, headers: response.headers });
  }
  return new Response(text, { status: response.status, headers: response.headers });
}
