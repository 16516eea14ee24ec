/**
 * A stand-in for the one trait of a transaction-mode pooler (Supavisor on a self-hosted
 * install's port 5432, or hosted's 6543) that breaks clients: a named prepared statement
 * does not survive, since each transaction may run on another server connection. This
 * TCP proxy in front of the stack's Postgres passes the wire protocol through and cuts
 * the connection at the first Parse message that names its statement; unnamed ones
 * (what a client with prepared statements off sends) pass. It is no pooler otherwise.
 */
export interface TransactionPooler {
  url: string;
  /** Parse messages seen: unnamed passed, named cut the connection. */
  parses: { unnamed: number; named: number };
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;

async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array | null> {
  const buffer = new Uint8Array(length);
  let read = 0;
  while (read < length) {
    const n = await conn.read(buffer.subarray(read));
    if (n === null) return null;
    read += n;
  }
  return buffer;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array) {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

export function startTransactionPooler(
  port: number,
  upstream: { hostname: string; port: number },
): TransactionPooler {
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  const parses = { unnamed: 0, named: 0 };
  const open = new Set<Deno.Conn>();

  async function serve(client: Deno.Conn) {
    const server = await Deno.connect(upstream);
    open.add(client).add(server);
    const closeBoth = () => {
      for (const conn of [client, server]) {
        try {
          conn.close();
        } catch { /* closed */ }
        open.delete(conn);
      }
    };
    const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset);
    const downstream = server.readable.pipeTo(client.writable).catch(() => {}).finally(closeBoth);
    try {
      // Startup: [int32 length][int32 code ...]; an SSLRequest first gets "no SSL".
      let head = await readExactly(client, 8);
      if (head && view(head).getInt32(4) === SSL_REQUEST) {
        await writeAll(client, new TextEncoder().encode("N"));
        head = await readExactly(client, 8);
      }
      if (!head) return closeBoth();
      const rest = await readExactly(client, view(head).getInt32(0) - 8);
      if (!rest) return closeBoth();
      await writeAll(server, new Uint8Array([...head, ...rest]));
      // Then messages: [type byte][int32 length incl. itself][body].
      while (true) {
        const header = await readExactly(client, 5);
        if (!header) break;
        const body = await readExactly(client, view(header).getInt32(1) - 4);
        if (!body) break;
        if (header[0] === 0x50 /* 'P' Parse: statement name first, a C string */) {
          if (body[0] !== 0) {
            parses.named++;
            break;
          }
          parses.unnamed++;
        }
        await writeAll(server, new Uint8Array([...header, ...body]));
      }
    } catch { /* a side went away */ }
    closeBoth();
    await downstream;
  }

  const accepting = (async () => {
    for await (const conn of listener) serve(conn);
  })().catch(() => {});

  return {
    url: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`,
    parses,
    async close() {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await accepting;
    },
  };
}
