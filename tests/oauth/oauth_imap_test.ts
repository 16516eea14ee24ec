/**
 * Dovecot really checks bearer tokens: its oauth2 passdb introspects each one at the local
 * authorization server (real oidc-provider), so an IMAP login with an access token from the
 * authorization-code flow works, and an expired, revoked, foreign or refresh token does not.
 * Password mailboxes keep working beside it. Needs the running stack (scripts/stack start).
 */
import assert from "node:assert/strict";
import { ImapFlow } from "imapflow";
import {
  appendMessages,
  createImapUser,
  IMAP_PORT,
  message,
  withImapClient,
} from "../support/imap.ts";
import { connectWithCode, revoke, tokenRequest } from "../support/oauth.ts";

function oauthClient(username: string, accessToken: string): ImapFlow {
  return new ImapFlow({
    host: "127.0.0.1",
    port: IMAP_PORT,
    secure: false,
    doSTARTTLS: false,
    auth: { user: username, accessToken },
    logger: false,
  });
}

/** Logs in with the token (imapflow picks OAUTHBEARER) and returns INBOX's message count. */
async function inboxCount(username: string, accessToken: string): Promise<number> {
  const client = oauthClient(username, accessToken);
  await client.connect();
  try {
    const status = await client.status("INBOX", { messages: true });
    return status ? status.messages ?? -1 : -1;
  } finally {
    await client.logout();
  }
}

async function refused(username: string, accessToken: string): Promise<void> {
  const client = oauthClient(username, accessToken);
  client.on("error", () => {});
  await assert.rejects(() => client.connect(), (error: { authenticationFailed?: boolean }) => {
    assert.equal(error.authenticationFailed, true, String(error));
    return true;
  });
}

/** One raw SASL exchange on a fresh plain connection; returns the tagged answer line. */
async function authenticateRaw(mechanism: string, payload: string): Promise<string> {
  const connection = await Deno.connect({ hostname: "127.0.0.1", port: IMAP_PORT });
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  let text = "";
  const buffer = new Uint8Array(4096);
  const readUntil = async (pattern: RegExp) => {
    while (!pattern.test(text)) {
      const n = await connection.read(buffer);
      if (n === null) throw new Error(`Connection closed: ${text}`);
      text += decoder.decode(buffer.subarray(0, n));
    }
  };
  try {
    await readUntil(/^\* OK/m);
    await connection.write(encoder.encode(`a1 AUTHENTICATE ${mechanism} ${btoa(payload)}\r\n`));
    await readUntil(/^(a1 .*|\+ .*)\r\n/m);
    if (/^\+ /m.test(text) && !/^a1 /m.test(text)) {
      await connection.write(encoder.encode("\r\n")); // the error challenge: end the exchange
      await readUntil(/^a1 .*\r\n/m);
    }
    return text.match(/^a1 .*$/m)![0];
  } finally {
    connection.close();
  }
}

Deno.test("an access token from the code flow opens the user's mailbox (OAUTHBEARER and XOAUTH2)", async () => {
  const user = await createImapUser();
  await appendMessages(user, "INBOX", [message(), message()]);
  for (const clientId of ["google-shape", "microsoft-shape"]) {
    const tokens = await connectWithCode(clientId, user);
    assert.equal(await inboxCount(user.username, tokens.access_token as string), 2, clientId);
    const xoauth2 = `user=${user.username}\x01auth=Bearer ${tokens.access_token}\x01\x01`;
    assert.match(await authenticateRaw("XOAUTH2", xoauth2), /^a1 OK/, `${clientId} XOAUTH2`);
  }
});

Deno.test("a password mailbox still logs in with its password, beside OAuth", async () => {
  const user = await createImapUser();
  await appendMessages(user, "INBOX", [message()]);
  const count = await withImapClient(user, async (client) => {
    const status = await client.status("INBOX", { messages: true });
    return status ? status.messages : -1;
  });
  assert.equal(count, 1);
  await assert.rejects(
    () => withImapClient({ ...user, password: "wrong" }, () => Promise.resolve()),
  );
});

Deno.test("an expired access token is refused; a refreshed one works", async () => {
  const user = await createImapUser();
  const tokens = await connectWithCode("google-shape-short", user);
  const lifetime = tokens.expires_in as number; // STACK_OAUTH_SHORT_TTL, 3 s by default
  assert.ok(lifetime > 0 && lifetime <= 10, `expires_in ${lifetime}`);
  assert.equal(await inboxCount(user.username, tokens.access_token as string), 0);
  await new Promise((resolve) => setTimeout(resolve, (lifetime + 1) * 1000));
  await refused(user.username, tokens.access_token as string);
  const refreshed = await tokenRequest("google-shape-short", {
    grant_type: "refresh_token",
    refresh_token: tokens.refresh_token as string,
  });
  assert.equal(refreshed.status, 200);
  assert.equal(await inboxCount(user.username, refreshed.body.access_token as string), 0);
});

Deno.test("a revoked grant's access token is refused at once (no auth cache)", async () => {
  const user = await createImapUser();
  const tokens = await connectWithCode("google-shape", user);
  assert.equal(await inboxCount(user.username, tokens.access_token as string), 0);
  assert.equal(await revoke(tokens.refresh_token as string, "google-shape"), 200);
  await refused(user.username, tokens.access_token as string);
});

Deno.test("a token opens only its own user's mailbox; a refresh token or garbage opens none", async () => {
  const alice = await createImapUser();
  const bob = await createImapUser();
  const tokens = await connectWithCode("microsoft-shape", alice);
  await refused(bob.username, tokens.access_token as string);
  await refused(alice.username, tokens.refresh_token as string);
  await refused(alice.username, "not-a-token");
  const xoauth2 = `user=${bob.username}\x01auth=Bearer ${tokens.access_token}\x01\x01`;
  assert.match(await authenticateRaw("XOAUTH2", xoauth2), /^a1 NO/);
  assert.equal(await inboxCount(alice.username, tokens.access_token as string), 0, "still valid");
});
