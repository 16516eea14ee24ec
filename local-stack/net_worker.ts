/**
 * pg_net STAND-IN worker (local stack only). Does what pg_net's background worker
 * does: takes requests off net.http_request_queue (a request leaves the queue
 * before it is sent), sends each with its own timeout, and records the outcome in
 * net._http_response under the same id: status, headers and body, or
 * timed_out / error_msg. No retries, like pg_net.
 *
 * With --capture-dir it also keeps a copy of each request it sends (url, headers,
 * base64 body), the way a network observer could: the demo and the tests replay
 * those copies to show that a captured request is worthless.
 *
 *   deno run --allow-net --allow-env --allow-read --allow-write net_worker.ts \
 *     --db-url <url> [--capture-dir <dir>]
 */
import postgres from "postgres";
import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    "db-url": { type: "string" },
    "batch-size": { type: "string", default: "200" },
    "poll-ms": { type: "string", default: "250" },
    "capture-dir": { type: "string" },
  },
});
const dbUrl = values["db-url"];
if (!dbUrl) throw new Error("Usage: net_worker.ts --db-url <postgres url>");
const batchSize = Number(values["batch-size"]);
const pollMs = Number(values["poll-ms"]);
const captureDir = values["capture-dir"];
if (captureDir) Deno.mkdirSync(captureDir, { recursive: true });

const sql = postgres(dbUrl, {
  max: 2,
  onnotice: () => {},
  connection: { application_name: "pg_net stand-in" },
});

interface QueuedRequest {
  id: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer> | null;
  timeout_milliseconds: number;
}

function capture(request: QueuedRequest) {
  const copy = {
    id: request.id,
    method: request.method,
    url: request.url,
    headers: request.headers,
    body_base64: request.body ? Buffer.from(request.body).toString("base64") : null,
  };
  Deno.writeTextFileSync(`${captureDir}/${request.id}.json`, JSON.stringify(copy, null, 2));
}

async function send(request: QueuedRequest) {
  if (captureDir) capture(request);
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal: AbortSignal.timeout(request.timeout_milliseconds),
    });
    const content = await response.text();
    await sql`
      insert into net._http_response (id, status_code, content_type, headers, content, timed_out)
      values (${request.id}, ${response.status}, ${response.headers.get("content-type")},
              ${sql.json(Object.fromEntries(response.headers))}, ${content}, false)`;
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === "TimeoutError";
    const message = timedOut
      ? `Timeout of ${request.timeout_milliseconds} ms reached`
      : (error as Error).message.split("\n")[0];
    await sql`
      insert into net._http_response (id, timed_out, error_msg)
      values (${request.id}, ${timedOut}, ${message})`;
  }
}

async function drain(): Promise<number> {
  const requests = await sql<QueuedRequest[]>`
    delete from net.http_request_queue
     where id in (select id from net.http_request_queue order by id limit ${batchSize} for update skip locked)
    returning id, method, url, headers, body, timeout_milliseconds`;
  await Promise.all(requests.map(send));
  return requests.length;
}

let wake: (() => void) | null = null;
await sql.listen("net_stand_in_queue", () => wake?.());
console.log(
  JSON.stringify({ level: "info", component: "pg_net stand-in", message: "Worker started" }),
);

while (true) {
  try {
    if ((await drain()) > 0) continue;
  } catch (error) {
    console.error(
      JSON.stringify({
        level: "error",
        component: "pg_net stand-in",
        message: (error as Error).message,
      }),
    );
  }
  await new Promise<void>((resolve) => {
    wake = resolve;
    setTimeout(resolve, pollMs);
  });
  wake = null;
}
