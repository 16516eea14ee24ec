import assert from "node:assert/strict";
import { createMemoryLogger } from "../platform/log.ts";
import { ReconnectNeededError } from "../oauth/oauth_errors.ts";
import type { ProviderClients } from "../oauth/provider_clients.ts";
import type { TokenClient, Tokens } from "../oauth/token_client.ts";
import { mailbox } from "../../tests/support/import_fakes.ts";
import { createOAuthAccess, OAuthNotConfiguredError, sha256Hex } from "./oauth_access.ts";

const box = { ...mailbox("m1", { auth_kind: "oauth2" }), oauth_provider: "microsoft" };

/** A provider whose refresh answers in turn: each a token (rotating or not) or an error. */
function provider(answers: Array<Partial<Tokens> | Error>, clock: { now: number }) {
  const presented: string[] = [];
  let n = 0;
  const client = {
    refresh(refreshToken: string): Promise<Tokens> {
      presented.push(refreshToken);
      const answer = answers[Math.min(n++, answers.length - 1)];
      if (answer instanceof Error) return Promise.reject(answer);
      return Promise.resolve({
        accessToken: `at-${n}`,
        expiresAt: clock.now + 3600_000,
        refreshToken: refreshToken,
        rotated: false,
        scope: undefined,
        ...answer,
      });
    },
  } as unknown as TokenClient;
  const providers: ProviderClients = {
    names: ["microsoft"],
    client: (name) => Promise.resolve(name === "microsoft" ? client : null),
  };
  return { providers, presented };
}

function store(kept = true) {
  const calls: Array<[string, string, string]> = [];
  return {
    calls,
    storeRotatedRefreshToken(mailboxId: string, presentedSha256: string, newToken: string) {
      calls.push([mailboxId, presentedSha256, newToken]);
      return Promise.resolve(kept);
    },
  };
}

Deno.test("a cached access token serves the next runs without a round trip, until near its expiry", async () => {
  const clock = { now: 1_000_000 };
  const { providers, presented } = provider([{}, {}], clock);
  const access = createOAuthAccess({
    providers,
    store: store(),
    log: createMemoryLogger(),
    now: () => clock.now,
  });
  assert.equal(await access.accessToken(box, "rt-1"), "at-1");
  clock.now += 58 * 60_000; // 2 minutes of its hour left
  assert.equal(await access.accessToken(box, "rt-1"), "at-1");
  assert.equal(access.refreshes, 1);
  clock.now += 61_000; // under a minute left: refreshed before the login
  assert.equal(await access.accessToken(box, "rt-1"), "at-2");
  assert.deepEqual(presented, ["rt-1", "rt-1"]);
});

Deno.test("a short-lived token is refreshed at half its life", async () => {
  const clock = { now: 0 };
  const { providers } = provider([{ expiresAt: 10_000 }, { expiresAt: 20_000 }], clock);
  const access = createOAuthAccess({
    providers,
    store: store(),
    log: createMemoryLogger(),
    now: () => clock.now,
  });
  assert.equal(await access.accessToken(box, "rt"), "at-1");
  clock.now = 4_000;
  assert.equal(await access.accessToken(box, "rt"), "at-1");
  clock.now = 5_001;
  assert.equal(await access.accessToken(box, "rt"), "at-2");
});

Deno.test("a rotated refresh token is stored by compare-and-swap on the presented token's hash", async () => {
  const clock = { now: 0 };
  const { providers, presented } = provider([{ refreshToken: "rt-2", rotated: true }], clock);
  const tokens = store();
  const access = createOAuthAccess({
    providers,
    store: tokens,
    log: createMemoryLogger(),
    now: () => clock.now,
  });
  await access.accessToken(box, "rt-1");
  assert.deepEqual(tokens.calls, [["m1", await sha256Hex("rt-1"), "rt-2"]]);
  // The next run reads the rotated token from Vault: the cache still serves it.
  assert.equal(await access.accessToken(box, "rt-2"), "at-1");
  assert.deepEqual(presented, ["rt-1"]);
});

Deno.test("a rotation that lost the race is not cached: the newer stored token is used next", async () => {
  const clock = { now: 0 };
  const { providers, presented } = provider([
    { refreshToken: "rt-2", rotated: true },
    { refreshToken: "rt-4", rotated: true },
  ], clock);
  const log = createMemoryLogger();
  const access = createOAuthAccess({ providers, store: store(false), log, now: () => clock.now });
  assert.equal(await access.accessToken(box, "rt-1"), "at-1", "this run still signs in");
  assert.equal(await access.accessToken(box, "rt-3"), "at-2");
  assert.deepEqual(presented, ["rt-1", "rt-3"]);
  assert.ok(!log.lines.join("\n").includes("rt-2"), "no token in the log");
});

Deno.test("a token from another refresh token (a reconnect) is never served from the cache", async () => {
  const clock = { now: 0 };
  const { providers, presented } = provider([{}, {}], clock);
  const access = createOAuthAccess({
    providers,
    store: store(),
    log: createMemoryLogger(),
    now: () => clock.now,
  });
  await access.accessToken(box, "old-grant");
  assert.equal(await access.accessToken(box, "new-grant"), "at-2");
  assert.deepEqual(presented, ["old-grant", "new-grant"]);
});

Deno.test("a refused grant and an unknown provider are errors, and nothing is cached", async () => {
  const clock = { now: 0 };
  const { providers } = provider([new ReconnectNeededError("invalid_grant"), {}], clock);
  const access = createOAuthAccess({
    providers,
    store: store(),
    log: createMemoryLogger(),
    now: () => clock.now,
  });
  await assert.rejects(access.accessToken(box, "rt"), ReconnectNeededError);
  assert.equal(await access.accessToken(box, "rt"), "at-2");
  await assert.rejects(
    access.accessToken({ ...box, oauth_provider: "yahoo" }, "rt"),
    OAuthNotConfiguredError,
  );
});
