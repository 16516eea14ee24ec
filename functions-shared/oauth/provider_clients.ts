/**
 * The token clients of the providers the operator registered (config.ts OAuthConfig), by the
 * name a mailbox row stores (`oauth_provider`): google, microsoft, generic. Built once per
 * function instance; the generic provider's discovery document is fetched on first use
 * (bounded) and fetched again after a failure, never per run.
 */
import type { OAuthConfig } from "../platform/config.ts";
import type { FetchBounds } from "./bounded_fetch.ts";
import { defaultFetchBounds } from "./bounded_fetch.ts";
import {
  discoverProvider,
  googleProvider,
  microsoftProvider,
  type OAuthProvider,
} from "./providers.ts";
import { createTokenClient, type TokenClient } from "./token_client.ts";

export type ProviderClients = {
  /** The names of the registered providers. */
  names: string[];
  /** The provider's token client; null when the operator registered no such provider. */
  client(name: string): Promise<TokenClient | null>;
};

/**
 * The name Supabase Auth gives a provider's identities (`app_metadata.providers`): Microsoft is
 * `azure` there; any other provider is expected under its own name.
 */
export function supabaseAuthProvider(name: string): string {
  return name === "microsoft" ? "azure" : name;
}

const LOOPBACK_HTTP = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\//;

export function createProviderClients(
  config: OAuthConfig,
  options: { bounds?: Partial<FetchBounds>; now?: () => number } = {},
): ProviderClients {
  const clients = new Map<string, () => Promise<TokenClient>>();
  const make = (provider: OAuthProvider, credentials: { clientId: string; clientSecret: string }) =>
    createTokenClient(provider, credentials, options);

  if (config.google) {
    const client = make(googleProvider(), config.google);
    clients.set("google", () => Promise.resolve(client));
  }
  if (config.microsoft) {
    const client = make(microsoftProvider({ tenant: config.microsoft.tenant }), config.microsoft);
    clients.set("microsoft", () => Promise.resolve(client));
  }
  const generic = config.generic;
  if (generic) {
    let pending: Promise<TokenClient> | undefined;
    clients.set("generic", () => {
      pending ??= discoverProvider(
        generic.issuer,
        {
          name: "generic",
          scopes: generic.scopes,
          // offline_access is granted with consent (OpenID Connect Core 11).
          authorizationParams: { prompt: "consent" },
          imap: generic.imap,
        },
        {
          ...defaultFetchBounds,
          ...options.bounds,
          allowLoopbackHttp: LOOPBACK_HTTP.test(new URL(generic.issuer).href),
        },
      ).then((provider) => make(provider, generic));
      pending.catch(() => pending = undefined);
      return pending;
    });
  }
  return {
    names: [...clients.keys()],
    async client(name) {
      const get = clients.get(name);
      return get ? await get() : null;
    },
  };
}
