/**
 * The gateway's routes: `/functions/v1/<name>[/...]` to the function's instance that
 * takes new requests (function_supervisor.ts), after the platform's JWT check where the
 * project mode runs one (platform_jwt_check.ts: hosted `verify_jwt`, or the self-hosted
 * `main` router's VERIFY_JWT), which answers 401 before the function sees the request;
 * Auth's JWKS and /user at `/auth/v1` (auth_stand_in.ts); `/health`. The platform's own
 * answers: 404 NOT_FOUND, 503 BOOT_ERROR, 546 WORKER_LIMIT.
 */
import type { FunctionSupervisor, ServedFunction } from "./function_supervisor.ts";

export interface RouterOptions {
  supervisor: FunctionSupervisor;
  /** Auth stand-in's answer, or null when the request is not one of its routes. */
  authRoutes: (request: Request) => Promise<Response> | Response | null;
  /** The platform's JWT check for the function: null lets the request through. */
  platformCheck: (name: string, request: Request) => Promise<Response | null>;
}

export interface Router {
  /** The gateway's port: every route, the JWT check included. */
  gateway(request: Request): Promise<Response>;
  /** A function's own port: straight to its instance, no JWT check ("the function itself"). */
  direct(served: ServedFunction): (request: Request) => Promise<Response>;
}

const json = (status: number, body: unknown) => Response.json(body, { status });
const bootError = () =>
  json(503, { code: "BOOT_ERROR", message: "Function failed to start (please check logs)" });

export function createRouter(options: RouterOptions): Router {
  const { supervisor } = options;

  /** Passes the request to the function's instance that takes new requests. */
  async function forward(served: ServedFunction, request: Request, path: string) {
    const instance = supervisor.instanceFor(served);
    if (!instance.up && !(await supervisor.booted(instance))) {
      if (served.current === instance && !instance.up) served.bootFailed = true;
      return bootError();
    }
    const headers = new Headers(request.headers);
    headers.delete("host");
    headers.delete("content-length"); // the body is streamed through as it arrives
    try {
      return await fetch(`http://127.0.0.1:${instance.port}${path}`, {
        method: request.method,
        headers,
        body: request.body,
        redirect: "manual",
      });
    } catch {
      // The platform answers a worker that ended mid-request with 546 WORKER_LIMIT
      // when a limit ended it; a plain 502 otherwise. The connection can drop a moment
      // before the process's end is reported (a loaded machine): wait for it briefly.
      await Promise.race([
        instance.process.status,
        new Promise((resolve) => setTimeout(resolve, 2_000)),
      ]);
      return instance.exited
        ? json(546, { code: "WORKER_LIMIT", message: "Function instance ended (resource limit)" })
        : json(502, { code: "BAD_GATEWAY", message: "Function did not answer" });
    }
  }

  return {
    async gateway(request) {
      const url = new URL(request.url);
      const authAnswer = options.authRoutes(request);
      if (authAnswer) return await authAnswer;
      if (url.pathname === "/health") {
        const states = await Promise.all([...supervisor.functions.values()].map(supervisor.isUp));
        return states.every(Boolean) ? json(200, { ok: true }) : json(503, { ok: false });
      }
      const match = url.pathname.match(/^\/functions\/v1\/([A-Za-z0-9_-]+)(\/.*)?$/);
      const served = match ? supervisor.functions.get(match[1]) : undefined;
      if (!match || !served) {
        return json(404, { code: "NOT_FOUND", message: "Requested function was not found" });
      }
      if (served.bootFailed) return bootError();
      const refused = await options.platformCheck(served.name, request);
      if (refused) return refused;
      return await forward(served, request, `/${served.name}${match[2] ?? ""}${url.search}`);
    },
    direct(served) {
      return (request) => {
        const url = new URL(request.url);
        return served.bootFailed
          ? Promise.resolve(bootError())
          : forward(served, request, url.pathname + url.search);
      };
    },
  };
}
