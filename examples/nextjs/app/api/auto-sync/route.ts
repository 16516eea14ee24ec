/**
 * A Next.js App Router route handler (app/api/auto-sync/route.ts): the browser sends the
 * user's access token (`supabase.auth.getSession()`) as a bearer. Route handlers take and
 * return the web-standard Request and Response, so no `next` import is needed and
 * `deno check` covers this file as it is.
 *
 *   POST /api/auto-sync {"action": "connect", "host", "port", "username", "password"}
 *   POST /api/auto-sync {"action": "enable", "every": "30 minutes"}
 *   POST /api/auto-sync {"action": "sync-now"}            -> 202 {"run_id"}
 *   GET  /api/auto-sync?run_id=<uuid>                     -> the run, or 404
 */
import {
  type AutoSyncClient,
  clientFor,
  connectMailbox,
  enableAutoSync,
  runStatus,
  syncNow,
} from "../../../lib/auto_sync.ts";

const project = {
  url: process.env.NEXT_PUBLIC_SUPABASE_URL ?? "",
  publishableKey: process.env.NEXT_PUBLIC_SUPABASE_PUBLISHABLE_KEY ?? "",
};

function userClient(request: Request): AutoSyncClient | null {
  const token = request.headers.get("authorization")?.match(/^Bearer (\S+)$/)?.[1];
  return token ? clientFor(token, project) : null;
}

export async function POST(request: Request): Promise<Response> {
  const supabase = userClient(request);
  if (!supabase) return Response.json({ error: "sign in first" }, { status: 401 });
  const body = await request.json().catch(() => ({}));
  try {
    switch (body.action) {
      case "connect": {
        const id = await connectMailbox(supabase, {
          p_host: String(body.host),
          p_port: Number(body.port ?? 993),
          p_username: String(body.username),
          p_credential: String(body.password),
          p_folders: ["INBOX"],
        });
        return Response.json({ mailbox_id: id }, { status: 201 });
      }
      case "enable":
        return Response.json(await enableAutoSync(supabase, String(body.every ?? "30 minutes")));
      case "sync-now":
        return Response.json(await syncNow(supabase), { status: 202 });
      default:
        return Response.json({ error: "unknown action" }, { status: 400 });
    }
  } catch (error) {
    return Response.json({ error: (error as Error).message }, { status: 400 });
  }
}

export async function GET(request: Request): Promise<Response> {
  const supabase = userClient(request);
  if (!supabase) return Response.json({ error: "sign in first" }, { status: 401 });
  const runId = new URL(request.url).searchParams.get("run_id");
  if (!runId) return Response.json({ error: "run_id is required" }, { status: 400 });
  const run = await runStatus(supabase, runId);
  return run
    ? Response.json({
      status: run.status,
      fetched: run.fetched,
      inserted: run.inserted,
      error: run.error,
      finished_at: run.finished_at,
    })
    : Response.json({ error: "no such run" }, { status: 404 });
}
