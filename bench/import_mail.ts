/**
 * Two ways to put the benchmark's mail (bench/mail_corpus.ts) into a Dovecot user's
 * INBOX: `appendOverImap` (one imapflow connection, APPEND after APPEND) or
 * `writeMaildir`: files written straight into the user's Maildir/cur, owned by the
 * Dovecot run user, named the way Dovecot names them (`,S=<size>,W=<size>:2,<flags>`)
 * with the mtime as INTERNALDATE; Dovecot assigns UIDs when it first opens the folder.
 */
import { Buffer } from "node:buffer";
import { dovecotState, withImapClient } from "../tests/support/imap.ts";
import type { GeneratedMessage } from "./mail_corpus.ts";

export interface SeedResult {
  messages: number;
  bytes: number;
  ms: number;
}

/** APPENDs over one plain IMAP connection, one message after another (each with its flags and date). */
export async function appendOverImap(
  user: { username: string; password: string },
  messages: Iterable<GeneratedMessage>,
): Promise<SeedResult> {
  const started = performance.now();
  let count = 0;
  let bytes = 0;
  await withImapClient(user, async (client) => {
    for (const message of messages) {
      await client.append("INBOX", Buffer.from(message.source), message.flags, message.date);
      count++;
      bytes += message.source.length;
    }
  });
  return { messages: count, bytes, ms: performance.now() - started };
}

const MAILDIR_FLAG = { "\\Answered": "R", "\\Flagged": "F", "\\Seen": "S" } as Record<
  string,
  string
>;

export const maildirHome = (username: string) => `${dovecotState}/mail/${username.toLowerCase()}`;

/**
 * Writes the messages as files into the user's Maildir/cur (Dovecot's layout for
 * `mail_location = maildir:~/Maildir`, home `<state>/mail/<user>`), owned by the
 * user Dovecot runs as (the owner of `<state>/mail`). Dovecot gives them UIDs, in
 * file-name order, when it first opens INBOX (`openInbox` below does that).
 */
export async function writeMaildir(
  username: string,
  messages: Iterable<GeneratedMessage>,
): Promise<SeedResult> {
  const started = performance.now();
  const owner = await Deno.stat(`${dovecotState}/mail`);
  const uid = owner.uid!;
  const gid = owner.gid!;
  const home = maildirHome(username);
  const maildir = `${home}/Maildir`;
  for (const dir of [home, maildir, `${maildir}/cur`, `${maildir}/new`, `${maildir}/tmp`]) {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.chown(dir, uid, gid);
  }
  let existing = 0;
  for await (const _ of Deno.readDir(`${maildir}/cur`)) existing++;
  const base = Math.floor(Date.now() / 1000);
  let count = 0;
  let bytes = 0;
  for (const message of messages) {
    const n = existing + count;
    const flags = message.flags.map((flag) => MAILDIR_FLAG[flag]).filter(Boolean).sort().join("");
    const size = message.source.length; // CRLF on disk too, so the virtual size W= is the same
    // Zero-padded sequence number: file-name order is message order.
    const name = `${base}.M${
      String(n).padStart(7, "0")
    }P${Deno.pid}.bench,S=${size},W=${size}:2,${flags}`;
    const path = `${maildir}/cur/${name}`;
    await Deno.writeFile(path, message.source, { createNew: true, mode: 0o600 });
    await Deno.chown(path, uid, gid);
    await Deno.utime(path, message.date, message.date);
    count++;
    bytes += size;
  }
  return { messages: count, bytes, ms: performance.now() - started };
}

/**
 * Gives `to` the same INBOX as `from` by hard-linking `from`'s Maildir/cur files (no
 * copy: several users with 10,000 messages each cost no disk or time). Dovecot only
 * reads them here; a flag change would rename the link in that user's folder alone.
 */
export async function linkMaildir(from: string, to: string): Promise<SeedResult> {
  const started = performance.now();
  const owner = await Deno.stat(`${dovecotState}/mail`);
  const home = maildirHome(to);
  const maildir = `${home}/Maildir`;
  for (const dir of [home, maildir, `${maildir}/cur`, `${maildir}/new`, `${maildir}/tmp`]) {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.chown(dir, owner.uid!, owner.gid!);
  }
  const source = `${maildirHome(from)}/Maildir/cur`;
  let count = 0;
  let bytes = 0;
  for await (const entry of Deno.readDir(source)) {
    await Deno.link(`${source}/${entry.name}`, `${maildir}/cur/${entry.name}`);
    count++;
    bytes += Number(entry.name.match(/,S=(\d+)/)?.[1] ?? 0);
  }
  return { messages: count, bytes, ms: performance.now() - started };
}

/** Opens INBOX once (STATUS), so Dovecot syncs new Maildir files; returns the message count. */
export function openInbox(user: { username: string; password: string }): Promise<number> {
  return withImapClient(user, async (client) => {
    const status = await client.status("INBOX", { messages: true });
    return status ? status.messages ?? 0 : 0;
  });
}

/**
 * Fetches every message's metadata once (UID FLAGS INTERNALDATE RFC822.SIZE
 * BODYSTRUCTURE, no source), so Dovecot has parsed and cached what the importer
 * asks for before anything is timed: a real server has long since done that for
 * old mail. Returns how many messages it saw.
 */
export function warmUp(user: { username: string; password: string }): Promise<number> {
  return withImapClient(user, async (client) => {
    let seen = 0;
    const lock = await client.getMailboxLock("INBOX", { readOnly: true });
    try {
      for await (
        const _ of client.fetch("1:*", {
          uid: true,
          flags: true,
          internalDate: true,
          size: true,
          bodyStructure: true,
        })
      ) seen++;
    } finally {
      lock.release();
    }
    return seen;
  });
}

/** Deletes the user's mail directory (the benchmark's users only). */
export function removeMaildir(username: string): void {
  if (!/^u[0-9a-f]{12}$/.test(username)) {
    throw new Error(`Refusing to delete the mail of "${username}"`);
  }
  Deno.removeSync(maildirHome(username), { recursive: true });
}
