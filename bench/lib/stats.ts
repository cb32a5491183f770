import tQuantile from '@stdlib/stats-base-dists-t-quantile';

/** Summary statistics. Quantiles use linear interpolation between closest ranks (numpy's default). */

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  p25: number;
  p75: number;
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  const lowValue = sorted[low] as number;
  const highValue = sorted[high] as number;
  return lowValue + (highValue - lowValue) * (position - low);
}

export const median = (values: readonly number[]) => quantile(values, 0.5);

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    median: quantile(values, 0.5),
    min: values.length ? Math.min(...values) : Number.NaN,
    max: values.length ? Math.max(...values) : Number.NaN,
    p25: quantile(values, 0.25),
    p75: quantile(values, 0.75),
  };
}

export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN;
}

/** Latency figures from raw samples (milliseconds). */
export interface Latency {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function latency(samples: readonly number[]): Latency {
  let max = 0;
  for (const value of samples) if (value > max) max = value;
  return {
    n: samples.length,
    p50: quantile(samples, 0.5),
    p90: quantile(samples, 0.9),
    p99: quantile(samples, 0.99),
    max: samples.length ? max : Number.NaN,
    mean: mean(samples),
  };
}

/**
 * Ratios of subject to baseline, one per repetition pair (each pair measured back to back, in alternating order,
 * so background load hits both alike), summarized.
 */
export function pairedRatios(subject: readonly number[], baseline: readonly number[]): Summary & { values: number[] } {
  const n = Math.min(subject.length, baseline.length);
  const values: number[] = [];
  for (let i = 0; i < n; i++) values.push((subject[i] as number) / (baseline[i] as number));
  return { ...summarize(values), values };
}

/** Sample standard deviation (n − 1 in the denominator); NaN below 2 values. */
export function stdev(values: readonly number[]): number {
  if (values.length < 2) return Number.NaN;
  const m = mean(values);
  return Math.sqrt(values.reduce((sum, v) => sum + (v - m) ** 2, 0) / (values.length - 1));
}

/** A point estimate and its two-sided confidence interval. */
export interface Interval {
  n: number;
  estimate: number;
  low: number;
  high: number;
}

/**
 * Student's t interval for the mean of `values` at `level` (0.95): mean ± t(1 − α/2, n − 1) · s / √n. Below 2 values
 * the bounds are NaN (no spread is known). The quantile comes from @stdlib, not a hand table.
 */
export function tInterval(values: readonly number[], level = 0.95): Interval {
  const n = values.length;
  const estimate = mean(values);
  if (n < 2) return { n, estimate, low: Number.NaN, high: Number.NaN };
  const half = tQuantile(1 - (1 - level) / 2, n - 1) * (stdev(values) / Math.sqrt(n));
  return { n, estimate, low: estimate - half, high: estimate + half };
}

/**
 * The t interval of the mean log ratio, taken back: the geometric mean of the ratios and its interval. Ratios are
 * multiplicative and skewed (×0.5 and ×2 are equally far from 1), so the logs, not the ratios, are averaged.
 */
export function logRatioInterval(ratios: readonly number[], level = 0.95): Interval {
  const logs = tInterval(
    ratios.map((r) => Math.log(r)),
    level,
  );
  return { n: logs.n, estimate: Math.exp(logs.estimate), low: Math.exp(logs.low), high: Math.exp(logs.high) };
}
