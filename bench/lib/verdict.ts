import { Figure, type Goal, type ParsedFigure, type Verdict } from './figure.js';
import { type Interval, logRatioInterval, type Summary, summarize, tInterval } from './stats.js';

/**
 * How the report judges a figure (bench/analysis/README.md says why this way):
 * - the compared quantity, per repetition: subject ÷ baseline for `ratio-*` goals (and context figures with a
 *   baseline), subject − baseline for `difference-*`, the subject itself for `at-*` and `none`;
 * - its estimate and 95 % interval: a t interval on the log ratios (taken back: geometric mean ratio), on the
 *   differences, or on the subject's values; for an `exact` figure the values themselves (min–max);
 * - the verdict: `met` when the interval's bound that is hardest for the subject satisfies the goal, `missed` when
 *   even the favourable bound fails it, `inconclusive` in between or with fewer than 2 values; `missed` whenever a
 *   check failed; `context` for a figure without a goal (its failed checks are still listed).
 */

export type Quantity = 'ratio' | 'difference' | 'value';

export interface Judgement {
  figure: ParsedFigure;
  quantity: Quantity;
  /** The compared quantity, one value per repetition (pair). */
  values: number[];
  interval: Interval;
  subject: Summary;
  baseline: Summary | null;
  /** Per-pair ratios, whatever the goal (null without a baseline): the report shows them beside differences. */
  ratios: Summary | null;
  differences: Summary | null;
  verdict: Verdict;
  /** Why a verdict is not `met`: failed checks, too few values. */
  reasons: string[];
}

export const LEVEL = 0.95;

export function quantityOf(goal: Goal): Quantity {
  if (goal.kind === 'ratio-at-least' || goal.kind === 'ratio-at-most') return 'ratio';
  if (goal.kind === 'difference-at-most') return 'difference';
  return 'value';
}

/** Which way the goal points: `at-least` goals want a large quantity, `at-most` goals a small one. */
function direction(goal: Goal): 'at-least' | 'at-most' | null {
  if (goal.kind === 'none') return null;
  return goal.kind.endsWith('at-least') ? 'at-least' : 'at-most';
}

/** Checks the figure (zod: finite numbers, ids) and the pairing the goal needs; throws naming field and problem. */
export function parseFigure(input: Figure): ParsedFigure {
  const parsed = Figure.safeParse(input);
  const id = (input as { id?: unknown })?.id ?? '(no id)';
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `figure ${String(id)}: ${issue?.path.join('.') || '(root)'}: ${issue?.message} (samples are finite numbers, e.g. [1.02, 0.98])`,
    );
  }
  const figure = parsed.data;
  if (figure.subject.samples.length === 0)
    throw new Error(`figure ${figure.id}: subject.samples is empty (one value per repetition, e.g. [1.02, 0.98])`);
  const quantity = quantityOf(figure.goal);
  if (quantity !== 'value') {
    if (!figure.baseline)
      throw new Error(`figure ${figure.id}: baseline is null, but a ${figure.goal.kind} goal compares with one`);
    if (figure.baseline.samples.length !== figure.subject.samples.length)
      throw new Error(
        `figure ${figure.id}: baseline.samples has ${figure.baseline.samples.length} values, subject.samples ${figure.subject.samples.length}: sample i of both is one pair`,
      );
  }
  if (quantity === 'ratio') {
    const all = [...figure.subject.samples, ...(figure.baseline?.samples ?? [])];
    if (all.some((v) => v <= 0))
      throw new Error(`figure ${figure.id}: a ratio goal needs positive samples (got ${all.find((v) => v <= 0)})`);
  }
  return figure;
}

function pairedSummary(figure: ParsedFigure, of: (s: number, b: number) => number): Summary | null {
  const baseline = figure.baseline;
  if (!baseline || baseline.samples.length !== figure.subject.samples.length) return null;
  return summarize(figure.subject.samples.map((s, i) => of(s, baseline.samples[i] as number)));
}

/**
 * The quantity a figure compares: its goal's; a context figure (goal none) with a paired, positive baseline shows
 * its ratio, the most telling quantity, though nothing is judged.
 */
export function comparedQuantity(figure: ParsedFigure): Quantity {
  const quantity = quantityOf(figure.goal);
  const baseline = figure.baseline?.samples;
  const pairedPositive =
    baseline?.length === figure.subject.samples.length && [...baseline, ...figure.subject.samples].every((v) => v > 0);
  return quantity === 'value' && figure.goal.kind === 'none' && pairedPositive ? 'ratio' : quantity;
}

export function judge(input: Figure): Judgement {
  const figure = parseFigure(input);
  const quantity = comparedQuantity(figure);
  const subject = figure.subject.samples;
  const baseline = figure.baseline?.samples ?? [];
  const values =
    quantity === 'ratio'
      ? subject.map((s, i) => s / (baseline[i] as number))
      : quantity === 'difference'
        ? subject.map((s, i) => s - (baseline[i] as number))
        : [...subject];

  let interval: Interval;
  if (figure.exact) {
    // A deterministic measure: its values are the quantity itself, with no sampling error to estimate.
    const estimate = quantity === 'ratio' ? logRatioInterval(values).estimate : tInterval(values).estimate;
    interval = { n: values.length, estimate, low: Math.min(...values), high: Math.max(...values) };
  } else interval = quantity === 'ratio' ? logRatioInterval(values, LEVEL) : tInterval(values, LEVEL);

  const ratios = pairedSummary(figure, (s, b) => s / b);
  const differences = pairedSummary(figure, (s, b) => s - b);
  const reasons = figure.checks.filter((check) => !check.ok).map((check) => `check failed: ${check.what}`);
  const side = direction(figure.goal);
  let verdict: Verdict;
  if (side === null || figure.goal.kind === 'none') verdict = 'context';
  else if (reasons.length) verdict = 'missed';
  else if (!Number.isFinite(interval.low) || !Number.isFinite(interval.high)) {
    verdict = 'inconclusive';
    reasons.push(`${values.length} value${values.length === 1 ? '' : 's'}: an interval needs at least 2`);
  } else {
    const goal = figure.goal.value;
    const [hard, easy] = side === 'at-least' ? [interval.low, interval.high] : [interval.high, interval.low];
    const meets = (bound: number) => (side === 'at-least' ? bound >= goal : bound <= goal);
    verdict = meets(hard) ? 'met' : meets(easy) ? 'inconclusive' : 'missed';
    if (verdict === 'inconclusive') reasons.push('the 95 % interval spans the goal');
  }
  return {
    figure,
    quantity,
    values,
    interval,
    subject: summarize(subject),
    baseline: figure.baseline ? summarize(baseline) : null,
    ratios,
    differences,
    verdict,
    reasons,
  };
}
