/**
 * Serves a function's default export (`{ fetch }`) like `deno serve` does, and
 * answers `GET /memory` on a second port with the process's memory as the edge
 * runtime counts it: V8 heap used + external (Deno.memoryUsage()), RSS beside it.
 * `GET /memory?gc=1` first runs a full garbage collection (needs
 * `--v8-flags=--expose-gc`), so the figure is what the process keeps, not garbage
 * V8 has not collected yet.
 *
 *   deno run --v8-flags=--expose-gc <permissions> bench/support/memory_probe_server.ts \
 *     <entry.ts> <port> <probe port>
 */
export interface ProbeMemory {
  heap_used: number;
  external: number;
  rss: number;
}

const [entry, port, probePort] = Deno.args;
const served = (await import(new URL(entry, `file://${Deno.cwd()}/`).href)).default as {
  fetch: (request: Request) => Response | Promise<Response>;
};
const collect = (globalThis as { gc?: () => void }).gc;

Deno.serve(
  { hostname: "127.0.0.1", port: Number(probePort), onListen: () => {} },
  (request) => {
    if (new URL(request.url).searchParams.has("gc")) {
      if (!collect) return new Response("run with --v8-flags=--expose-gc", { status: 500 });
      collect();
    }
    const usage = Deno.memoryUsage();
    const memory: ProbeMemory = {
      heap_used: usage.heapUsed,
      external: usage.external,
      rss: usage.rss,
    };
    return Response.json(memory);
  },
);
Deno.serve({ hostname: "127.0.0.1", port: Number(port), onListen: () => {} }, served.fetch);
