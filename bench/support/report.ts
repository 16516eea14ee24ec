/**
 * How every benchmark reports: sections, aligned tables, goals, and the one-line
 * `summary:` records scripts/bench collects at the end. Used as a namespace
 * (`import * as report from "./support/report.ts"`); the figures' arithmetic and
 * formatting live in figures.ts.
 *
 * No pass/fail on timings anywhere: the machine is noisy, so every figure is a
 * ratio against a baseline run side by side, printed for a human to read. A goal
 * not met is printed as `GOAL NOT MET`; a benchmark fails only when an answer is
 * wrong.
 */
import { ratio } from "./figures.ts";

export function section(title: string): void {
  console.log(`\n== ${title}`);
}

/** Prints rows as an aligned, pipe-separated table (first row is the header). */
export function table(rows: string[][]): void {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
  const line = (row: string[]) =>
    row.map((cell, column) =>
      column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])
    )
      .join(" | ");
  console.log(line(rows[0]));
  console.log(widths.map((width) => "-".repeat(width)).join("-|-"));
  for (const row of rows.slice(1)) console.log(line(row));
}

/** One line scripts/bench copies into its final summary. */
export function summary(text: string): void {
  console.log(`summary: ${text}`);
}

/** A benchmark's goal for one figure; `shown` is how the bound is written (a ratio by default). */
export interface Goal {
  op: ">=" | "<=" | "<";
  bound: number;
  shown?: string;
}

export const atLeast = (bound: number): Goal => ({ op: ">=", bound });
export const atMost = (bound: number): Goal => ({ op: "<=", bound });

export function meets(goal: Goal, value: number): boolean {
  if (goal.op === ">=") return value >= goal.bound;
  return goal.op === "<=" ? value <= goal.bound : value < goal.bound;
}

export function verdict(met: boolean): string {
  return met ? "goal met" : "GOAL NOT MET";
}

/** "goal >= 0.50×, goal met": how every benchmark states a goal and whether a figure meets it. */
export function goal(goal: Goal, value: number): string {
  return `goal ${goal.op} ${goal.shown ?? ratio(goal.bound)}, ${verdict(meets(goal, value))}`;
}
