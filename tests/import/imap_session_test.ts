/**
 * ImapSession against the real IMAP server of the local stack (Dovecot): what the
 * folder sync relies on, from STATUS to a bounded FETCH.
 */
import assert from "node:assert/strict";
import { openImapSession } from "../../functions-shared/import_emails/imap_session.ts";
import type { Mailbox } from "../../functions-shared/import_emails/mail_store.ts";
import {
  appendMessages,
  caPem,
  createImapUser,
  IMAP_PORT,
  IMAPS_PORT,
  message,
} from "../support/imap.ts";

async function seededMailbox(sources: string[]) {
  const user = await createImapUser();
  await appendMessages(user, "INBOX", sources);
  const mailbox: Mailbox = {
    id: crypto.randomUUID(),
    user_id: crypto.randomUUID(),
    host: "localhost",
    port: IMAPS_PORT,
    tls_mode: "tls",
    username: user.username,
    auth_kind: "password",
    folders: ["INBOX"],
    paused_reason: null,
  };
  return { user, mailbox };
}

Deno.test("status, new UIDs and a chunk: what the folder sync needs, over verified TLS", async () => {
  const sources = [message({ subject: "one" }), message({ subject: "two" }), message()];
  const { user, mailbox } = await seededMailbox(sources);
  const session = await openImapSession(mailbox, user.password, {
    maxMessageBytes: 1024 * 1024,
    caPem: caPem(),
    allowPrivateHosts: true,
  });
  try {
    const status = await session.status("INBOX");
    assert.ok(Number.isInteger(status.uidValidity) && status.uidValidity > 0);
    assert.equal(status.uidNext, 4);
    assert.equal(status.messages, 3);

    const all = await session.newUids("INBOX", 0);
    assert.deepEqual(all, { uidValidity: status.uidValidity, uids: [1, 2, 3] });
    // `*` matches the newest message even when nothing is above: never returned.
    assert.deepEqual((await session.newUids("INBOX", 3)).uids, []);
    assert.deepEqual((await session.newUids("INBOX", 1)).uids, [2, 3]);

    const fetched = await session.fetchChunk("INBOX", [3, 1]);
    assert.deepEqual(fetched.map((m) => m.uid), [1, 3]);
    assert.equal(new TextDecoder().decode(fetched[0].source), sources[0]);
    assert.equal(fetched[0].size, sources[0].length);
    assert.ok(fetched[0].internalDate instanceof Date);
    assert.ok(Array.isArray(fetched[0].flags));
    assert.equal(fetched[0].bodyStructure?.type, "text/plain");
    // The folder is opened once, read-only (EXAMINE, never SELECT), for all the calls.
    const { STATUS, EXAMINE, SELECT, SEARCH, FETCH } = session.commands;
    assert.deepEqual({ STATUS, EXAMINE, SELECT, SEARCH, FETCH }, {
      STATUS: 1,
      EXAMINE: 1,
      SELECT: undefined,
      SEARCH: 3,
      FETCH: 1,
    });
  } finally {
    await session.close();
  }
});

Deno.test("a fetched source is cut at maxMessageBytes while size keeps the whole message's", async () => {
  const big = message({ body: "x".repeat(50_000) });
  const { user, mailbox } = await seededMailbox([big]);
  const session = await openImapSession(
    { ...mailbox, host: "127.0.0.1", port: IMAP_PORT, tls_mode: "plain" },
    user.password,
    { maxMessageBytes: 1000, allowPrivateHosts: true },
  );
  try {
    await session.newUids("INBOX", 0);
    const [fetched] = await session.fetchChunk("INBOX", [1]);
    assert.equal(fetched.source.length, 1000);
    assert.equal(fetched.size, big.length);
  } finally {
    await session.close();
  }
});

Deno.test("STATUS of a folder the server does not have fails with its name", async () => {
  const { user, mailbox } = await seededMailbox([]);
  const session = await openImapSession(mailbox, user.password, {
    maxMessageBytes: 1024,
    caPem: caPem(),
    allowPrivateHosts: true,
  });
  try {
    await assert.rejects(session.status("No such folder"));
  } finally {
    await session.close();
  }
});

Deno.test("tls_mode 'plain' is refused before any connection unless private hosts or plaintext are allowed", async () => {
  const { user, mailbox } = await seededMailbox([message()]);
  const plain: Mailbox = { ...mailbox, host: "127.0.0.1", port: IMAP_PORT, tls_mode: "plain" };
  await assert.rejects(
    openImapSession(plain, user.password, { maxMessageBytes: 1024, allowPrivateHosts: false }),
    /Plain-text IMAP is not allowed for this server/,
  );
  // The opt-in (IMAP_ALLOW_PLAINTEXT) and the private-host policy each allow it.
  for (
    const options of [{ allowPrivateHosts: true }, {
      allowPrivateHosts: true,
      allowPlaintext: true,
    }]
  ) {
    const session = await openImapSession(plain, user.password, {
      maxMessageBytes: 1024,
      ...options,
    });
    assert.equal((await session.status("INBOX")).messages, 1);
    await session.close();
  }
});
