/**
 * Admission of one run to its function instance (isolate_budget.ts holds the
 * instance's budget): a slot among the runs it serves at once, waited for while the
 * run's time lasts; then the run's window and the messages it may request, reserved
 * up front so that runs side by side cannot overspend. `leave` gives back what the
 * run did not request and frees the slot.
 */
import { type IsolateBudget, type RunWindow, runWindow } from "./isolate_budget.ts";

export type Admission =
  | {
    admitted: false;
    /** What the instance had no budget left for. */
    why: string;
    /** When the run's time started (unix ms). */
    started: number;
    /** Frees the slot if the run took one (`requested` is 0: nothing was reserved). */
    leave(requested: number): void;
  }
  | {
    admitted: true;
    started: number;
    window: RunWindow;
    /** Messages the run may request, reserved in the instance's budget. */
    maxMessages: number;
    /** `requested`: what the run requested in the end; the rest goes back. */
    leave(requested: number): void;
  };

export async function admitRun(
  isolate: IsolateBudget,
  options: {
    limits: { maxMessages: number; maxSeconds: number; stopGraceSeconds: number };
    now: () => number;
    shutdown?: AbortSignal;
  },
): Promise<Admission> {
  const { limits, now } = options;
  /** The run's time from `at`, within its own limits and the instance's wall clock. */
  const windowFrom = (at: number) =>
    runWindow(at, {
      startedAt: isolate.startedAt,
      wallClockMs: isolate.wallClockMs,
      maxSeconds: limits.maxSeconds,
      stopGraceSeconds: limits.stopGraceSeconds,
    });

  const arrived = now();
  // Several runs may land in this instance: wait for a slot while the run's time lasts.
  const entry = await isolate.enter({
    until: windowFrom(arrived).deadline,
    signal: options.shutdown,
  });
  if (entry === "refused") {
    return { admitted: false, why: "it was busy with other imports", started: arrived, leave() {} };
  }
  const started = entry === "waited" ? now() : arrived;
  const window = windowFrom(started);
  const maxMessages = Math.min(limits.maxMessages, isolate.messagesLeft());
  if (maxMessages === 0 || window.deadline <= started) {
    const why = maxMessages === 0 ? "its messages are spent" : "its wall clock is nearly over";
    return { admitted: false, why, started, leave: () => isolate.leave() };
  }
  isolate.spend(maxMessages);
  return {
    admitted: true,
    started,
    window,
    maxMessages,
    leave(requested) {
      isolate.spend(requested - maxMessages);
      isolate.leave();
    },
  };
}
