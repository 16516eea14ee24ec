/**
 * The baseline for bench/http_reject_bench.ts: the least a Deno HTTP endpoint can
 * do to refuse a request — read the body, answer 401 with a small JSON body. Served
 * by the same `deno serve` command as the real function, so the only difference
 * between the two servers is the handler.
 *
 *   deno serve --host 127.0.0.1 --port <p> bench/support/baseline_reject_server.ts
 */
export default {
  async fetch(request: Request): Promise<Response> {
    await request.arrayBuffer();
    return Response.json({ error: "unauthorized" }, { status: 401 });
  },
};
