/**
 * Access tokens for OAuth mailboxes (a refresh token in Vault, `oauth_provider` set): one
 * refresh at the provider when this function instance holds no access token for the mailbox
 * that is good for a while longer, else the cached one (no round trip per run). A rotated
 * refresh token is stored by compare-and-swap before its access token is used
 * (auto_sync.store_rotated_refresh_token): a run that lost a race never overwrites a newer
 * token. The cache lives in the instance's memory only, keyed by the mailbox, its provider
 * and the hash of the refresh token it came from, so a reconnected mailbox never gets an old grant's
 * token; it is never stored or logged.
 */
import type { Logger } from "../platform/log.ts";
import type { ProviderClients } from "../oauth/provider_clients.ts";
import type { Mailbox } from "./mail_store.ts";

/** The registered providers have no client by this name (the operator's configuration). */
export class OAuthNotConfiguredError extends Error {
  override name = "OAuthNotConfiguredError";
  constructor(readonly provider: string) {
    super(`OAuth provider "${provider}" is not configured on this server`);
  }
}

export interface RefreshTokenStore {
  /** Compare-and-swap: false when the stored token is no longer the presented one. */
  storeRotatedRefreshToken(
    mailboxId: string,
    presentedSha256: string,
    newToken: string,
  ): Promise<boolean>;
}

export type OAuthAccess = {
  /** An access token for the mailbox, cached or from one refresh; throws the token client's errors. */
  accessToken(mailbox: Mailbox & { oauth_provider: string }, refreshToken: string): Promise<string>;
  /** Drops the cached token (the server refused it). */
  forget(mailboxId: string): void;
  /** Refreshes done by this instance, for tests and benchmarks. */
  readonly refreshes: number;
};

type Cached = {
  provider: string;
  refreshSha256: string;
  accessToken: string;
  expiresAt: number;
  obtainedAt: number;
};

/** At most this many mailboxes' tokens per instance; the oldest entry goes first. */
const MAX_CACHED = 10_000;
/** A token is refreshed this long before it expires (or at half its life, if shorter). */
const EXPIRY_MARGIN_MS = 60_000;

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Whether a cached token is still good for the next login and a run after it. */
export function stillFresh(entry: Cached, now: number): boolean {
  const margin = Math.min(EXPIRY_MARGIN_MS, (entry.expiresAt - entry.obtainedAt) / 2);
  return entry.expiresAt - now > margin;
}

export function createOAuthAccess(
  deps: { providers: ProviderClients; store: RefreshTokenStore; log: Logger; now?: () => number },
): OAuthAccess {
  const now = deps.now ?? Date.now;
  const cache = new Map<string, Cached>();
  let refreshes = 0;

  function remember(mailboxId: string, entry: Cached) {
    cache.delete(mailboxId);
    if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
    cache.set(mailboxId, entry);
  }

  return {
    get refreshes() {
      return refreshes;
    },
    forget(mailboxId) {
      cache.delete(mailboxId);
    },
    async accessToken(mailbox, refreshToken) {
      const presented = await sha256Hex(refreshToken);
      const cached = cache.get(mailbox.id);
      if (
        cached?.provider === mailbox.oauth_provider && cached.refreshSha256 === presented &&
        stillFresh(cached, now())
      ) {
        return cached.accessToken;
      }
      cache.delete(mailbox.id);
      const client = await deps.providers.client(mailbox.oauth_provider);
      if (!client) throw new OAuthNotConfiguredError(mailbox.oauth_provider);
      const obtainedAt = now();
      refreshes += 1;
      const tokens = await client.refresh(refreshToken);
      let current: string | null = presented;
      if (tokens.rotated && tokens.refreshToken) {
        const kept = await deps.store.storeRotatedRefreshToken(
          mailbox.id,
          presented,
          tokens.refreshToken,
        );
        current = kept ? await sha256Hex(tokens.refreshToken) : null;
        if (!kept) {
          // Another run or a reconnect stored a newer token: it stays, and this access
          // token serves this run only.
          deps.log.warn("Rotated refresh token not stored: a newer one is stored", {
            mailbox_id: mailbox.id,
          });
        }
      }
      if (current) {
        remember(mailbox.id, {
          provider: mailbox.oauth_provider,
          refreshSha256: current,
          accessToken: tokens.accessToken,
          expiresAt: tokens.expiresAt,
          obtainedAt,
        });
      }
      return tokens.accessToken;
    },
  };
}
