/**
 * A scripted IMAP server on loopback (real TCP) that speaks enough IMAP for imapflow
 * and lies where a test tells it to. It serves a copy of a real Dovecot folder (same
 * UIDVALIDITY, UIDs and sources), so that after the lie, `honest()` turns it into a
 * plain TCP proxy to Dovecot and the next run meets the real server.
 */
import { IMAP_PORT } from "./imap.ts";

export interface FolderCopy {
  uidValidity: number;
  messages: Array<{ uid: number; source: Uint8Array }>;
}

/** How the server answers; each hook may replace the honest answer. */
export interface Script {
  /** Before the tagged OK of STATUS: the untagged STATUS line (or anything else). */
  status?(honest: string, tag: string): string;
  /** The lines of EXAMINE's answer; a last line with the tag replaces the tagged OK. */
  examine?(honest: string[], tag: string): string[];
  /** The whole answer to LIST (untagged lines and the tagged one). */
  list?(tag: string, write: (text: string) => Promise<void>): Promise<void>;
  /**
   * The answer to UID FETCH; `honestRow(uid, seq)` gives the row an honest server
   * sends, `honestRow(uid, seq, claimed)` the same message under another UID.
   */
  fetch?(
    uids: number[],
    tag: string,
    io: {
      write: (data: string | Uint8Array) => Promise<void>;
      honestRow: (uid: number, seq: number, claimedUid?: number) => Uint8Array;
      close: () => void;
    },
  ): Promise<void>;
}

const encoder = new TextEncoder();
const CRLF = "\r\n";

function uidSet(text: string): number[] {
  const uids: number[] = [];
  for (const part of text.split(",")) {
    const [low, high] = part.split(":").map(Number);
    for (let uid = low; uid <= (high || low); uid++) uids.push(uid);
  }
  return uids;
}

export function startHostileServer(folder: FolderCopy, script: Script) {
  let honestMode = false;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections = new Set<Deno.Conn>();

  // By UID, so a folder that announces hundreds of thousands of UIDs answers at once.
  const byUid = new Map(folder.messages.map((message) => [message.uid, message]));
  const honestRow = (uid: number, seq: number, claimedUid = uid) => {
    const message = byUid.get(uid)!;
    const head =
      `* ${seq} FETCH (UID ${claimedUid} FLAGS (\\Seen) RFC822.SIZE ${message.source.length} ` +
      `INTERNALDATE "01-Nov-2026 10:00:00 +0000" ` +
      `BODYSTRUCTURE ("text" "plain" ("charset" "utf-8") NIL NIL "7bit" ${message.source.length} 1 NIL NIL NIL NIL) ` +
      `BODY[]<0> {${message.source.length}}${CRLF}`;
    const row = new Uint8Array([
      ...encoder.encode(head),
      ...message.source,
      ...encoder.encode(`)${CRLF}`),
    ]);
    return row;
  };

  async function serve(conn: Deno.Conn) {
    connections.add(conn);
    let open = true;
    const write = async (data: string | Uint8Array) => {
      if (!open) throw new Error("closed");
      await conn.write(typeof data === "string" ? encoder.encode(data) : data);
    };
    const close = () => {
      if (!open) return;
      open = false;
      try {
        conn.close();
      } catch { /* already closed */ }
    };
    if (honestMode) {
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port: IMAP_PORT });
      await Promise.allSettled([
        conn.readable.pipeTo(upstream.writable),
        upstream.readable.pipeTo(conn.writable),
      ]);
      connections.delete(conn);
      return;
    }
    try {
      await write(`* OK [CAPABILITY IMAP4rev1 LITERAL+] hostile test server ready${CRLF}`);
      let buffer = "";
      const decoder = new TextDecoder();
      for await (const chunk of conn.readable) {
        buffer += decoder.decode(chunk);
        let end;
        while ((end = buffer.indexOf(CRLF)) >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          await answer(line, write, close);
        }
      }
    } catch {
      // the client went away or a write failed: this connection is over
    } finally {
      close();
      connections.delete(conn);
    }
  }

  async function answer(
    line: string,
    write: (data: string | Uint8Array) => Promise<void>,
    close: () => void,
  ) {
    const [tag, ...words] = line.split(" ");
    const isUid = words[0]?.toUpperCase() === "UID";
    const command = (isUid ? words[1] : words[0])?.toUpperCase();
    const uidNext = folder.messages.reduce((max, m) => Math.max(max, m.uid), 0) + 1;
    const ok = (text = "done") => write(`${tag} OK ${text}${CRLF}`);
    switch (command) {
      case "CAPABILITY":
        await write(`* CAPABILITY IMAP4rev1 LITERAL+${CRLF}`);
        return ok();
      case "NAMESPACE":
        await write(`* NAMESPACE (("" "/")) NIL NIL${CRLF}`);
        return ok();
      case "LIST":
        if (script.list) return script.list(tag, write);
        await write(`* LIST () "/" INBOX${CRLF}`);
        return ok();
      case "STATUS": {
        const honest =
          `* STATUS INBOX (MESSAGES ${folder.messages.length} UIDNEXT ${uidNext} UIDVALIDITY ${folder.uidValidity})${CRLF}`;
        const text = script.status ? script.status(honest, tag) : honest;
        await write(text);
        if (!text.startsWith(`${tag} `)) await ok();
        return;
      }
      case "EXAMINE":
      case "SELECT": {
        const honest = [
          `* ${folder.messages.length} EXISTS`,
          `* OK [UIDVALIDITY ${folder.uidValidity}] UIDs valid`,
          `* OK [UIDNEXT ${uidNext}] next`,
        ];
        const lines = script.examine ? script.examine(honest, tag) : honest;
        for (const line of lines) await write(line + CRLF);
        if (!lines.at(-1)?.startsWith(`${tag} `)) await ok("[READ-ONLY] done");
        return;
      }
      case "SEARCH":
        await write(`* SEARCH ${folder.messages.map((m) => m.uid).join(" ")}${CRLF}`);
        return ok();
      case "FETCH": {
        const uids = uidSet(words[2]).filter((uid) => byUid.has(uid));
        if (script.fetch) return script.fetch(uids, tag, { write, honestRow, close });
        for (const uid of uids) await write(honestRow(uid, uid));
        return ok();
      }
      case "LOGOUT":
        await write(`* BYE bye${CRLF}`);
        await ok();
        return close();
      default:
        // LOGIN, ID, ENABLE, LSUB, NOOP...: accepted without more.
        return ok();
    }
  }

  (async () => {
    for await (const conn of listener) serve(conn);
  })().catch(() => {});

  return {
    port: (listener.addr as Deno.NetAddr).port,
    /** From now on, every new connection is a plain proxy to the real Dovecot. */
    honest() {
      honestMode = true;
    },
    close() {
      listener.close();
      for (const conn of connections) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
    },
  };
}
