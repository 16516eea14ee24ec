/**
 * The project's public signing keys, as `import-emails` knows them: SUPABASE_JWKS
 * (injected when the isolate boots, so fresh then), refreshed from Auth's
 * `$SUPABASE_URL/auth/v1/.well-known/jwks.json` at most once per interval, whatever the
 * requests ask. A token naming a key id the project does not publish is refused
 * without any network call until the interval has passed: a flood of forged tokens
 * costs at most one JWKS fetch per interval (supabase-js alone fetches the JWKS and then
 * asks Auth's /user for each such token; it keeps no negative cache). A key Auth has
 * just published (a rotation) is found at the first refresh after it, so within one
 * interval; Supabase publishes a new key before it signs with it, and an isolate lives
 * minutes at most, after which the next one boots with the new SUPABASE_JWKS.
 */
import type { Jwk } from "../platform/config.ts";

/** At most one JWKS fetch per this, per isolate. */
export const JWKS_REFRESH_INTERVAL_MS = 60_000;
const FETCH_TIMEOUT_MS = 5_000;

export interface SigningKeys {
  /** The published key with this id, or null; fetches only when the interval allows. */
  find(kid: string): Promise<Jwk | null>;
}

export function createSigningKeys(
  injected: Jwk[],
  options: {
    supabaseUrl: string;
    apiKey: string;
    fetch?: typeof fetch;
    /** unix ms */
    now?: () => number;
    refreshIntervalMs?: number;
  },
): SigningKeys {
  const now = options.now ?? Date.now;
  const interval = options.refreshIntervalMs ?? JWKS_REFRESH_INTERVAL_MS;
  const doFetch = options.fetch ?? fetch;
  let keys = injected;
  let refreshedAt = now(); // the injected set is the project's keys at boot
  let refreshing: Promise<void> | null = null;

  const lookup = (kid: string) => keys.find((key) => key.kid === kid) ?? null;

  async function refresh(): Promise<void> {
    try {
      const response = await doFetch(
        `${options.supabaseUrl.replace(/\/+$/, "")}/auth/v1/.well-known/jwks.json`,
        { headers: { apikey: options.apiKey }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) },
      );
      if (!response.ok) {
        await response.body?.cancel();
        return;
      }
      const published = (await response.json() as { keys?: unknown })?.keys;
      if (Array.isArray(published)) {
        const fetched = published.filter((key): key is Jwk =>
          typeof key === "object" && key !== null && typeof key.kid === "string"
        );
        // A key stays usable once seen in this isolate's life (minutes): the injected
        // ones, and those Auth published, even if a later answer omits one.
        keys = [...fetched, ...keys.filter((key) => !fetched.some((f) => f.kid === key.kid))];
      }
    } catch {
      // Auth unreachable: the tokens it would vouch for are refused (fail closed).
    }
  }

  return {
    async find(kid) {
      const known = lookup(kid);
      if (known) return known;
      if (!refreshing && now() - refreshedAt < interval) return null;
      if (!refreshing) {
        refreshedAt = now();
        refreshing = refresh().finally(() => (refreshing = null));
      }
      await refreshing;
      return lookup(kid);
    },
  };
}
