/**
 * SECURITY.md's property for OAuth mailboxes: a copy of the database, Vault decrypted
 * included, yields refresh tokens that cannot be redeemed without the client secret, which
 * the database never holds. Shown on the real authorization server of the stack (its
 * clients are confidential, as Google's and Microsoft's web clients are): the stored token
 * redeemed with no secret, a wrong one, or another client's, is refused; the secret is in
 * no table, Vault secret, setting or cron job. And what a leaked client secret allows:
 * with it, the same stolen token is redeemed. Needs the running stack.
 */
import assert from "node:assert/strict";
import { connect, createUser } from "../support/local_stack.ts";
import { createImapUser, IMAPS_PORT } from "../support/imap.ts";
import { clientSecret, connectWithCode, oauthIssuer } from "../support/oauth.ts";
import { functionsClientId } from "../../local-stack/oauth/provision.ts";

const sql = connect();

async function redeem(refreshToken: string, credentials: Record<string, string>) {
  const response = await fetch(new URL("/token", oauthIssuer), {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: refreshToken,
      client_id: functionsClientId,
      ...credentials,
    }),
  });
  return { status: response.status, body: await response.json() };
}

Deno.test("a database copy, Vault decrypted, holds refresh tokens useless without the client secret", async () => {
  const userId = await createUser(sql, "oauth-copy");
  const imapUser = await createImapUser();
  const connected = await connectWithCode(functionsClientId, imapUser);
  const [box] = await sql`
    insert into public.mailboxes (user_id, host, port, username, auth_kind, oauth_provider)
    values (${userId}, 'localhost', ${IMAPS_PORT}, ${imapUser.username}, 'oauth2', 'generic')
    returning id`;
  await sql`
    insert into auto_sync.mailbox_credentials (mailbox_id, secret_id)
    values (${box.id}, vault.create_secret(${connected.refresh_token as string}))`;

  // What the thief has: every decrypted Vault secret (the refresh token among them).
  const [copied] = await sql`
    select s.decrypted_secret from vault.decrypted_secrets s
      join auto_sync.mailbox_credentials c on c.secret_id = s.id where c.mailbox_id = ${box.id}`;
  const stolen = copied.decrypted_secret as string;
  assert.equal(stolen, connected.refresh_token);

  const secret = clientSecret(functionsClientId);
  const dump = await sql`
    select string_agg(decrypted_secret, ' ') as text from vault.decrypted_secrets
    union all select string_agg(command, ' ') from cron.job
    union all select string_agg(setting, ' ') from pg_settings
    union all select string_agg(s::text, ' ') from auto_sync.settings s`;
  for (const row of dump) {
    assert.ok(!String(row.text ?? "").includes(secret), "the client secret is not in the database");
  }

  for (
    const credentials of <Record<string, string>[]> [
      {}, // as a public client: no secret
      { client_secret: "not-the-secret" },
      { client_secret: clientSecret("google-shape") }, // another client's secret
    ]
  ) {
    const { status, body } = await redeem(stolen, credentials);
    assert.equal(status, 401, JSON.stringify(body));
    assert.equal(body.error, "invalid_client");
    assert.equal(body.access_token, undefined);
  }

  // A leaked client secret is the missing half: with it the copied token is redeemed.
  const { status, body } = await redeem(stolen, { client_secret: secret });
  assert.equal(status, 200);
  assert.ok(typeof body.access_token === "string");
  await sql`delete from public.mailboxes where id = ${box.id}`;
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
