/**
 * The figures' arithmetic and how they are written: medians, min–max spreads,
 * `12,345`-style numbers and `1.23×` ratios. How a benchmark prints them: report.ts.
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
