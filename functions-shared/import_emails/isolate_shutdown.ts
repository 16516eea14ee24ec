/**
 * The edge runtime announces an isolate's teardown (wall clock, CPU or memory limit)
 * with a `beforeunload` event on globalThis; work in the background has until then to
 * save what it has. This turns the event into an AbortSignal the importer checks at
 * each chunk boundary.
 */
export function isolateShutdownSignal(target: EventTarget = globalThis): AbortSignal {
  const controller = new AbortController();
  target.addEventListener(
    "beforeunload",
    () => controller.abort(new Error("The function instance is shutting down")),
    { once: true },
  );
  return controller.signal;
}
