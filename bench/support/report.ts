/**
 * Small helpers the benchmarks share: medians, number formatting, aligned tables,
 * and the one-line `summary:` records scripts/bench collects at the end.
 *
 * No pass/fail on timings anywhere: the machine is noisy, so every figure is a
 * ratio against a baseline run side by side, printed for a human to read.
 */

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** `12,345` style integers, fixed decimals otherwise. */
export function fmt(value: number, decimals = 0): string {
  return value.toLocaleString("en-US", {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  });
}

/**
 * `1.23×`. A value that two decimals would round onto a tenth (where goals sit: 0.50×,
 * 1.20×, 2.00×) gets a third, so 0.496× never reads as a goal of 0.50× met.
 */
export function ratio(value: number): string {
  const text = value.toFixed(2);
  const ontoTenth = Number(text) !== value && Number(text) * 10 === Math.round(Number(text) * 10);
  return `${ontoTenth ? value.toFixed(3) : text}×`;
}

/** "min–max" of a series, to show how noisy the rounds were. */
export function spread(values: number[], decimals = 0): string {
  return `${fmt(Math.min(...values), decimals)}–${fmt(Math.max(...values), decimals)}`;
}

/** Prints rows as an aligned, pipe-separated table (first row is the header). */
export function printTable(rows: string[][]): void {
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

export function section(title: string): void {
  console.log(`\n== ${title}`);
}

/** One line scripts/bench copies into its final summary. */
export function summary(text: string): void {
  console.log(`summary: ${text}`);
}

export function goalNote(met: boolean): string {
  return met ? "goal met" : "GOAL NOT MET";
}
