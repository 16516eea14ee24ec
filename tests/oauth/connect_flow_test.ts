/**
 * The connect flow over HTTP on the stack (functions oauth-connect and oauth-callback, the
 * real oidc-provider as the `generic` provider, the real Dovecot): a signed-in user gets the
 * authorization URL (PKCE S256, a single-use state stored hashed, the exact redirect URI),
 * signs in and consents as a browser would, the callback redeems the code and sends the
 * browser back to the allowed app page with a ticket, and the same user's "finish" makes the
 * mailbox, which then imports; disconnect deletes it and revokes the grant. And the attacks: a forged or replayed state, a callback that
 * lands in another user's session, a code swapped between two users' flows, a return URL
 * outside the allowlist, an anonymous user. Needs the running stack.
 */
import assert from "node:assert/strict";
import {
  connect,
  createUser,
  functionsUrl,
  mintUserToken,
  postAsUser,
  waitFor,
} from "../support/local_stack.ts";
import { appendMessages, createImapUser, IMAPS_PORT, message } from "../support/imap.ts";
import { oauthRedirectUri, signInAndConsent, tokenRequest } from "../support/oauth.ts";
import { functionsClientId, returnUrl } from "../../local-stack/oauth/provision.ts";

const sql = connect();

function startConnect(token: string, body: Record<string, unknown>) {
  return postAsUser("oauth-connect", token, body);
}

async function authorizationUrl(token: string): Promise<URL> {
  const { status, body } = await startConnect(token, { provider: "generic", return_to: returnUrl });
  assert.equal(status, 200, JSON.stringify(body));
  return new URL(body.authorization_url);
}

/** The browser arriving at the callback: the status and where it is sent. */
async function arrive(callback: URL | string) {
  const response = await fetch(callback, { redirect: "manual" });
  await response.body?.cancel();
  const location = response.headers.get("location");
  return { status: response.status, location: location ? new URL(location) : null };
}

function finish(token: string, ticket: string) {
  return postAsUser("oauth-connect/finish", token, { ticket });
}

async function mailboxesOf(userId: string) {
  return await sql`
    select id, username, host, port, auth_kind, oauth_provider, reconnect_needed_at
      from public.mailboxes where user_id = ${userId}`;
}

/** One whole connect for a user: returns the ticket the browser came back with. */
async function connectUntilTicket(token: string, imapUser: { username: string; password: string }) {
  const callback = await signInAndConsent(await authorizationUrl(token), imapUser);
  const back = await arrive(callback);
  assert.equal(back.status, 303);
  const ticket = back.location?.searchParams.get("oauth_ticket");
  assert.ok(ticket, `a ticket in ${back.location}`);
  return { callback, ticket };
}

Deno.test("connect: authorization URL, consent, callback, finish -> a mailbox that imports", async (t) => {
  const userId = await createUser(sql, "connect");
  const token = await mintUserToken(userId);
  const imapUser = await createImapUser();
  await appendMessages(imapUser, "INBOX", [message({ subject: "connected" })]);

  const url = await authorizationUrl(token);
  await t.step(
    "the authorization URL: PKCE S256, a state kept only hashed, the exact redirect URI",
    async () => {
      assert.equal(url.searchParams.get("code_challenge_method"), "S256");
      assert.ok(url.searchParams.get("code_challenge"));
      assert.equal(url.searchParams.get("redirect_uri"), oauthRedirectUri);
      const state = url.searchParams.get("state")!;
      const rows = await sql`
      select state_sha256 = encode(sha256(convert_to(${state}, 'UTF8')), 'hex') as hashed,
             expires_at - now() <= interval '10 minutes' as minutes
        from auto_sync.oauth_states where user_id = ${userId}`;
      assert.deepEqual(rows.map((row) => ({ ...row })), [{ hashed: true, minutes: true }]);
    },
  );

  const callback = await signInAndConsent(url, imapUser);
  const back = await arrive(callback);
  const ticket = back.location?.searchParams.get("oauth_ticket") ?? "";
  await t.step("the callback sends the browser back to the allowed page with a ticket", () => {
    assert.equal(back.status, 303);
    assert.equal(`${back.location!.origin}${back.location!.pathname}`, returnUrl);
    assert.match(ticket, /^[A-Za-z0-9_-]{43}$/);
  });

  await t.step("the same callback again (a replayed state) is refused", async () => {
    const again = await arrive(callback);
    assert.equal(again.status, 400);
    assert.equal(again.location, null);
  });

  await t.step(
    "finish makes the mailbox from the preset, the refresh token in Vault only",
    async () => {
      const { status, body } = await finish(token, ticket);
      assert.equal(status, 200);
      const [box] = await mailboxesOf(userId);
      assert.equal(box.id, body.mailbox_id);
      assert.deepEqual(
        { username: box.username, host: box.host, port: box.port, kind: box.auth_kind },
        { username: imapUser.username, host: "localhost", port: IMAPS_PORT, kind: "oauth2" },
      );
      assert.equal(box.oauth_provider, "generic");
      const [pending] = await sql`
      select count(*)::int as n from auto_sync.oauth_pending_connections where user_id = ${userId}`;
      assert.equal(pending.n, 0, "the ticket is spent and its Vault secret gone with it");
      assert.equal((await finish(token, ticket)).status, 404, "a ticket works once");
    },
  );

  await t.step("'sync now' imports the connected mailbox", async () => {
    const response = await fetch(`${functionsUrl}/import-emails`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(response.status, 202);
    const { run_id } = await response.json();
    const run = await waitFor(async () => {
      const [row] =
        await sql`select * from auto_sync.runs where id = ${run_id} and finished_at is not null`;
      return row;
    }, { timeoutMs: 30_000 });
    assert.equal(run.status, "succeeded", run.error);
    assert.equal(run.details.inserted, 1);
  });

  await t.step("connecting the same address again reconnects the same mailbox", async () => {
    const [box] = await mailboxesOf(userId);
    await sql`update public.mailboxes set reconnect_needed_at = now() where id = ${box.id}`;
    const { ticket: second } = await connectUntilTicket(token, imapUser);
    assert.equal((await finish(token, second)).body.mailbox_id, box.id);
    const after = await mailboxesOf(userId);
    assert.equal(after.length, 1);
    assert.equal(after[0].reconnect_needed_at, null, "reconnect_needed cleared");
  });
});

Deno.test("attack: a forged state is refused before any code is redeemed", async () => {
  for (const query of ["state=forged&code=abc", "code=abc", `state=${"x".repeat(600)}&code=abc`]) {
    const response = await arrive(`${functionsUrl}/oauth-callback?${query}`);
    assert.equal(response.status, 400, query);
    assert.equal(response.location, null);
  }
});

Deno.test("attack: a callback that lands in another user's session makes no mailbox there", async () => {
  // The attacker starts a flow; the victim completes it at the provider with the victim's
  // account; the victim's browser comes back with a ticket bound to the attacker's flow.
  const attacker = await createUser(sql, "attacker");
  const victim = await createUser(sql, "victim");
  const victimMail = await createImapUser();
  const attackerToken = await mintUserToken(attacker);
  const victimToken = await mintUserToken(victim);
  const { ticket } = await connectUntilTicket(attackerToken, victimMail);
  assert.equal(
    (await finish(victimToken, ticket)).status,
    404,
    "worthless in the victim's session",
  );
  assert.equal((await mailboxesOf(victim)).length, 0);
  assert.equal((await mailboxesOf(attacker)).length, 0);
  // The ticket is not spent by the wrong user (and it still binds to its own user only).
  assert.equal((await finish(attackerToken, ticket)).status, 200);
  await sql`delete from public.mailboxes where user_id = ${attacker}`;
});

Deno.test("attack: a code swapped between two users' flows is refused (PKCE), no ticket", async () => {
  const a = await createUser(sql, "swap-a");
  const b = await createUser(sql, "swap-b");
  const aMail = await createImapUser();
  const bMail = await createImapUser();
  const aCallback = await signInAndConsent(await authorizationUrl(await mintUserToken(a)), aMail);
  const bCallback = await signInAndConsent(await authorizationUrl(await mintUserToken(b)), bMail);
  // A's code under B's state: the code was issued for A's code challenge, B's verifier fails.
  const swapped = new URL(bCallback);
  swapped.searchParams.set("code", aCallback.searchParams.get("code")!);
  const back = await arrive(swapped);
  assert.equal(back.status, 303);
  assert.equal(back.location?.searchParams.get("oauth_error"), "connect_failed");
  assert.equal(back.location?.searchParams.get("oauth_ticket"), null);
  const [pending] = await sql`
    select count(*)::int as n from auto_sync.oauth_pending_connections where user_id in (${a}, ${b})`;
  assert.equal(pending.n, 0);
});

Deno.test("attack: a return URL outside the allowlist is refused; so are near misses", async () => {
  const token = await mintUserToken(await createUser(sql, "redirect"));
  for (
    const returnTo of [
      "https://evil.example/steal",
      `${returnUrl}/../admin`,
      `${returnUrl}?next=https://evil.example`,
      `${returnUrl}#x`,
      returnUrl.replace("localhost", "localhost.evil.example"),
      "javascript:alert(1)",
      42,
    ]
  ) {
    const { status, body } = await startConnect(token, {
      provider: "generic",
      return_to: returnTo,
    });
    assert.equal(status, 400, String(returnTo));
    assert.deepEqual(body, { error: "bad_request" });
  }
  const unknown = await startConnect(token, { provider: "yahoo", return_to: returnUrl });
  assert.equal(unknown.status, 400, "an unregistered provider");
});

Deno.test("attack: no token, an anonymous user, and a finish without a ticket are refused", async () => {
  const userId = await createUser(sql, "anon");
  assert.equal(
    (await startConnect("not-a-jwt", { provider: "generic", return_to: returnUrl })).status,
    401,
  );
  const anonymous = await mintUserToken(userId, { isAnonymous: true });
  assert.equal(
    (await startConnect(anonymous, { provider: "generic", return_to: returnUrl })).status,
    403,
  );
  assert.equal((await finish(await mintUserToken(userId), "short")).status, 400);
});

function disconnect(token: string, mailboxId: unknown) {
  return postAsUser("oauth-connect/disconnect", token, { mailbox_id: mailboxId });
}

Deno.test("disconnect: the mailbox and its secret go, the grant is revoked at the provider", async () => {
  const userId = await createUser(sql, "disconnect");
  const other = await createUser(sql, "disconnect-other");
  const token = await mintUserToken(userId);
  const imapUser = await createImapUser();
  const { ticket } = await connectUntilTicket(token, imapUser);
  const { body } = await finish(token, ticket);
  const mailboxId = body.mailbox_id;
  const [stored] = await sql`
    select auto_sync.mailbox_credential(${mailboxId}::uuid) as token, c.secret_id
      from auto_sync.mailbox_credentials c where c.mailbox_id = ${mailboxId}`;

  assert.equal((await disconnect(await mintUserToken(other), mailboxId)).status, 404, "not theirs");
  assert.equal((await disconnect(token, "not-a-uuid")).status, 400);
  assert.deepEqual(await disconnect(token, mailboxId), { status: 200, body: { revoked: true } });
  assert.equal((await mailboxesOf(userId)).length, 0);
  const [secret] =
    await sql`select count(*)::int as n from vault.secrets where id = ${stored.secret_id}`;
  assert.equal(secret.n, 0, "the refresh token left Vault");
  const refused = await tokenRequest(functionsClientId, {
    grant_type: "refresh_token",
    refresh_token: stored.token,
  });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error, "invalid_grant", "revoked at the provider");
  assert.equal((await disconnect(token, mailboxId)).status, 404, "gone");
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
