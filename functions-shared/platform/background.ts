/** Runs work after the response is sent, the way the edge runtime allows it. */
import { errorText, type Logger } from "./log.ts";

interface EdgeRuntimeGlobal {
  EdgeRuntime?: { waitUntil(promise: Promise<unknown>): void };
}

export type Background = (task: Promise<unknown>) => void;

/**
 * On Supabase, `EdgeRuntime.waitUntil` keeps the worker alive until the task ends
 * (up to the wall-clock limit). Plain Deno keeps running pending promises anyway.
 * A failing task is logged, never left as an unhandled rejection.
 */
export function createBackground(log: Logger): Background {
  return (task) => {
    const guarded = task.catch((error) => {
      log.error("Background task failed", { error: errorText(error) });
    });
    (globalThis as EdgeRuntimeGlobal).EdgeRuntime?.waitUntil(guarded);
  };
}
