/**
 * CORS for "sync now", which browsers call (supabase.functions.invoke). The token,
 * not the origin, is what authorises a call, so any origin may ask.
 */
import type { MiddlewareHandler } from "hono";

export const CORS_HEADERS = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "authorization, x-client-info, apikey, content-type",
  "Access-Control-Allow-Methods": "POST, OPTIONS",
};

/** Answers preflights with 204 and puts the CORS headers on every answer, refusals included. */
export function cors(): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method === "OPTIONS") {
      return new Response(null, { status: 204, headers: CORS_HEADERS });
    }
    await next();
    for (const [name, value] of Object.entries(CORS_HEADERS)) c.res.headers.set(name, value);
  };
}
