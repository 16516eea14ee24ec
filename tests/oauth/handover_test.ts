/**
 * The Supabase Auth handover (oauth-connect/handover) on the stack: an app that signed its
 * user in through the provider gets `provider_refresh_token` from Supabase Auth (the same
 * client as the kit's; here, the real oidc-provider's token for that client) and hands it
 * over with the user's token. One refresh proves it works and names the account; it is kept
 * only for the user's own account, so a refresh token stolen elsewhere (useless without the
 * client secret) cannot be turned into an import of someone else's mail. Needs the stack.
 */
import assert from "node:assert/strict";
import { connect, createUser, mintUserToken, postAsUser, waitFor } from "../support/local_stack.ts";
import { appendMessages, createImapUser, message } from "../support/imap.ts";
import { connectWithCode, tokenRequest } from "../support/oauth.ts";
import { functionsClientId } from "../../local-stack/oauth/provision.ts";

const sql = connect();

function handover(token: string, body: Record<string, unknown>) {
  return postAsUser("oauth-connect/handover", token, body);
}

Deno.test("handover: the user's own provider refresh token becomes a mailbox that imports", async () => {
  const imapUser = await createImapUser();
  await appendMessages(imapUser, "INBOX", [message({ subject: "handed over" })]);
  const userId = await createUser(sql, "handover");
  // The session Supabase Auth gave the app: the user signed in with this provider.
  const token = await mintUserToken(userId, { email: imapUser.username, providers: ["generic"] });
  const providerToken = (await connectWithCode(functionsClientId, imapUser))
    .refresh_token as string;

  const { status, body } = await handover(token, {
    provider: "generic",
    refresh_token: providerToken,
  });
  assert.equal(status, 200, JSON.stringify(body));
  const [box] = await sql`
    select id, username, oauth_provider, auto_sync.mailbox_credential(id) as stored
      from public.mailboxes where user_id = ${userId}`;
  assert.equal(box.id, body.mailbox_id);
  assert.equal(box.username, imapUser.username);
  assert.equal(box.oauth_provider, "generic");
  assert.notEqual(box.stored, providerToken, "the rotation from the proving refresh is kept");

  const sync = await postAsUser("import-emails", token);
  assert.equal(sync.status, 202);
  const { run_id } = sync.body;
  const run = await waitFor(async () => {
    const [row] =
      await sql`select * from auto_sync.runs where id = ${run_id} and finished_at is not null`;
    return row;
  }, { timeoutMs: 30_000 });
  assert.equal(run.status, "succeeded", run.error);
  assert.equal(run.details.inserted, 1);
});

Deno.test("attack: another account's refresh token, or no sign-in with the provider, is refused and stored nowhere", async () => {
  const victim = await createImapUser();
  const attackerMail = await createImapUser();
  const attacker = await createUser(sql, "handover-attacker");
  // A token of the victim's account, as a copy of some database would yield it.
  const stolen = (await connectWithCode(functionsClientId, victim)).refresh_token as string;

  const asAttacker = await mintUserToken(attacker, {
    email: attackerMail.username,
    providers: ["generic"],
  });
  assert.equal(
    (await handover(asAttacker, { provider: "generic", refresh_token: stolen })).status,
    403,
  );
  // Claiming the victim's address without having signed in with the provider.
  const claiming = await mintUserToken(attacker, { email: victim.username, providers: ["email"] });
  const fresh = (await connectWithCode(functionsClientId, victim)).refresh_token as string;
  assert.equal(
    (await handover(claiming, { provider: "generic", refresh_token: fresh })).status,
    403,
  );
  assert.equal(
    (await handover(asAttacker, { provider: "generic", refresh_token: "garbage" })).status,
    400,
  );
  assert.equal(
    (await handover(asAttacker, { provider: "yahoo", refresh_token: fresh })).status,
    400,
  );
  const [count] =
    await sql`select count(*)::int as n from public.mailboxes where user_id = ${attacker}`;
  assert.equal(count.n, 0);
  // The refused token was not spent by the claim check: it still refreshes (no sign-in, no call).
  const still = await tokenRequest(functionsClientId, {
    grant_type: "refresh_token",
    refresh_token: fresh,
  });
  assert.equal(still.status, 200);
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
