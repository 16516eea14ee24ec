/**
 * An OAuth mailbox end to end through the real scheduled path: pg_cron tick -> pg_net ->
 * cron-auto-sync -> the importer, which trades the mailbox's refresh token (Vault) for an
 * access token at the stack's real authorization server (oidc-provider, the
 * Microsoft-shaped client: every refresh rotates the refresh token, access tokens live
 * 3 s) and signs in to the real Dovecot with it (oauth2 passdb, introspection). After the
 * access token expires the next run refreshes again and keeps the newly rotated token;
 * once the grant is revoked at the server the mailbox is "reconnect needed" for its user,
 * while the user's password mailbox goes on importing and the schedule does not back off.
 * Last, neither the client secret nor any refresh token it handled is in the stack's logs.
 * Needs the running stack (scripts/stack start).
 */
import assert from "node:assert/strict";
import {
  connect,
  createUser,
  readFunctionsEnv,
  stateDir,
  waitFor,
} from "../support/local_stack.ts";
import { withFastDispatchTick } from "../support/dispatch_tick.ts";
import {
  addMailbox,
  appendMessages,
  createImapUser,
  IMAPS_PORT,
  message,
} from "../support/imap.ts";
import { connectWithCode, revoke } from "../support/oauth.ts";
import { functionsClientId } from "../../local-stack/oauth/provision.ts";
import type postgres from "postgres";

const sql = connect();

/** A mailbox as the connect flow leaves it: the stack's generic provider, its refresh token in Vault. */
async function storeConnectedMailbox(
  userId: string,
  username: string,
  refreshToken: string,
): Promise<string> {
  return await sql.begin(async (tx) => {
    const [row] = await tx`
      insert into public.mailboxes (user_id, host, port, username, tls_mode, auth_kind, oauth_provider)
      values (${userId}, 'localhost', ${IMAPS_PORT}, ${username}, 'tls', 'oauth2', 'generic')
      returning id`;
    await tx`
      insert into auto_sync.mailbox_credentials (mailbox_id, secret_id)
      values (${row.id}, vault.create_secret(${refreshToken}, ${`mailbox:${row.id}`}))`;
    return row.id as string;
  });
}

async function storedToken(mailboxId: string): Promise<string> {
  const [row] = await sql`select auto_sync.mailbox_credential(${mailboxId}::uuid) as token`;
  return row.token;
}

/** The user's next finished run after the ones already seen; the schedule made due at once. */
async function nextScheduledRun(userId: string, seen: Set<string>): Promise<postgres.Row> {
  await sql`update auto_sync.schedules set next_run_at = now() where user_id = ${userId}`;
  const run = await withFastDispatchTick(sql, 2, () =>
    waitFor(async () => {
      const rows = await sql`
        select * from auto_sync.runs
         where user_id = ${userId} and finished_at is not null order by created_at`;
      return rows.find((row) => !seen.has(row.id));
    }, { timeoutMs: 80_000, intervalMs: 500 }));
  seen.add(run.id);
  return run;
}

async function mailboxStates(userId: string) {
  return await sql.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${
      JSON.stringify({ sub: userId, role: "authenticated" })
    }, true)`;
    await tx`set local role authenticated`;
    return await tx`select mailbox_id, state, needs_user, last_error from public.get_mailbox_states()`;
  });
}

Deno.test("OAuth mailbox through pg_cron: refresh, rotation kept, expiry, revocation -> reconnect needed", async (t) => {
  const userId = await createUser(sql, "oauth-import");
  const oauthUser = await createImapUser();
  const passwordUser = await createImapUser();
  await appendMessages(oauthUser, "INBOX", [
    message({ subject: "o1" }),
    message({ subject: "o2" }),
  ]);
  await appendMessages(passwordUser, "INBOX", [message({ subject: "p1" })]);

  const connected = await connectWithCode(functionsClientId, oauthUser);
  const firstToken = connected.refresh_token as string;
  assert.ok(firstToken, "the server granted offline access");
  const oauthBox = await storeConnectedMailbox(userId, oauthUser.username, firstToken);
  const passwordBox = await addMailbox(sql, userId, passwordUser);
  await sql`select auto_sync.enable(${userId})`;
  const seen = new Set<string>();
  const tokens = [firstToken];

  await t.step(
    "the first run refreshes, stores the rotated token and imports with it",
    async () => {
      const run = await nextScheduledRun(userId, seen);
      assert.equal(run.status, "succeeded", run.error);
      assert.equal(run.details.inserted, 3);
      const subjects = await sql`
      select subject from public.emails where mailbox_id = ${oauthBox} order by uid`;
      assert.deepEqual(subjects.map((row) => row.subject), ["o1", "o2"]);
      const stored = await storedToken(oauthBox);
      assert.notEqual(stored, firstToken, "the rotated refresh token replaced the first one");
      tokens.push(stored);
    },
  );

  await t.step(
    "after the access token expired, the next run refreshes and keeps the new rotation",
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 3_500)); // the client's 3 s tokens
      await appendMessages(oauthUser, "INBOX", [message({ subject: "o3" })]);
      const run = await nextScheduledRun(userId, seen);
      assert.equal(run.status, "succeeded", run.error);
      assert.equal(run.details.inserted, 1);
      const stored = await storedToken(oauthBox);
      assert.ok(!tokens.includes(stored), "a third refresh token, stored in place of the second");
      tokens.push(stored);
    },
  );

  await t.step(
    "the grant revoked at the server: reconnect needed, the other mailbox unharmed",
    async () => {
      assert.equal(await revoke(tokens.at(-1)!, functionsClientId), 200);
      await new Promise((resolve) => setTimeout(resolve, 3_500)); // no cached access token left
      await appendMessages(passwordUser, "INBOX", [message({ subject: "p2" })]);
      const run = await nextScheduledRun(userId, seen);
      assert.equal(run.status, "partial", "not a failure: the other mailbox imported");
      assert.equal(run.details.inserted, 1);
      assert.match(run.error, /^Reconnect needed: generic no longer accepts/);
      const [schedule] = await sql`
      select consecutive_failures, paused_reason from auto_sync.schedules where user_id = ${userId}`;
      assert.equal(schedule.consecutive_failures, 0, "no backoff for the user's schedule");
      assert.equal(schedule.paused_reason, null);

      const states = new Map((await mailboxStates(userId)).map((row) => [row.mailbox_id, row]));
      assert.equal(states.get(oauthBox)?.state, "reconnect_needed");
      assert.equal(states.get(oauthBox)?.needs_user, true);
      assert.equal(states.get(passwordBox)?.state, "ok");
      const [box] = await sql`
      select consecutive_auth_failures, paused_reason from public.mailboxes where id = ${oauthBox}`;
      assert.equal(box.consecutive_auth_failures, 0, "not counted as a failed login");
      assert.equal(box.paused_reason, null);
    },
  );

  await t.step(
    "the next run skips it without asking the provider, and no token is anywhere a user reads",
    async () => {
      const run = await nextScheduledRun(userId, seen);
      assert.equal(run.status, "partial");
      const skipped = run.details.mailboxes.find((entry: { id: string }) => entry.id === oauthBox);
      assert.equal(skipped.reconnect_needed, true);
      assert.equal(skipped.imap_commands, undefined, "no IMAP session was opened for it");
      const texts = await sql`
      select error, details::text as details from auto_sync.runs where user_id = ${userId}
      union all select last_error, null from public.mailboxes where user_id = ${userId}`;
      for (const token of tokens) {
        for (const row of texts) {
          assert.ok(
            !`${row.error}${row.details}`.includes(token),
            "no refresh token in runs or mailboxes",
          );
        }
      }
    },
  );

  await t.step(
    "neither the client secret nor any of its refresh tokens is in what the stack wrote",
    () => {
      // The gateway log holds every function's stdout and stderr; the server log Postgres's.
      const secret = readFunctionsEnv().OAUTH_GENERIC_CLIENT_SECRET;
      assert.ok(secret && secret.length >= 32, "the stack's functions have an OAuth client secret");
      const places = {
        "gateway log": Deno.readTextFileSync(`${stateDir}/gateway.log`),
        "postgres log": Deno.readTextFileSync(`${stateDir}/pg/server.log`),
      };
      assert.ok(places["gateway log"].includes(oauthBox), "the log holds this test's runs");
      for (const [place, text] of Object.entries(places)) {
        assert.ok(!text.includes(secret), `the client secret is not in the ${place}`);
        for (const token of tokens) {
          assert.ok(!text.includes(token), `no refresh token of this test in the ${place}`);
        }
      }
    },
  );

  await sql`select auto_sync.disable(${userId})`;
});

Deno.test({ name: "close the database connection", fn: () => sql.end() });
