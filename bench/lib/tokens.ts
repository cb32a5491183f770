import type { Goal } from './figure.js';
import { fmt } from './format.js';
import type { Summary } from './stats.js';
import type { Judgement } from './verdict.js';

/**
 * The tokens the analysis prose cites numbers with (bench/analysis/README.md): `{{FIGURE-ID:STAT}}` or
 * `{{FIGURE-ID:STAT:DIGITS}}`. Every one resolves from the judged figures; an unknown stat or an absent figure is an
 * error naming the token and the file.
 */
export const TOKEN = /\{\{([a-z0-9.-]+):([a-z.]+)(?::(\d))?\}\}/g;

const summaryStats = ['median', 'min', 'max', 'p25', 'p75', 'n'] as const;

function fromSummary(summary: Summary | null, stat: string): number | undefined {
  if (!summary) return undefined;
  return (summaryStats as readonly string[]).includes(stat) ? summary[stat as keyof Summary] : undefined;
}

const goalValue = (goal: Goal) => (goal.kind === 'none' ? undefined : goal.value);

/** The number (or word) a stat names, or undefined when the figure has no such stat. */
export function statOf(judged: Judgement, stat: string): number | string | undefined {
  const [head, tail = ''] = stat.split('.');
  switch (head) {
    case 'subject':
      return tail === 'mean' ? mean(judged.figure.subject.samples) : fromSummary(judged.subject, tail);
    case 'baseline':
      return tail === 'mean' && judged.figure.baseline
        ? mean(judged.figure.baseline.samples)
        : fromSummary(judged.baseline, tail);
    case 'ratio':
    case 'difference':
      // The interval's stats under the compared quantity's own name (ratio.low of a ratio figure).
      if (['estimate', 'low', 'high'].includes(tail))
        return judged.quantity === head ? judged.interval[tail as 'estimate' | 'low' | 'high'] : undefined;
      return fromSummary(head === 'ratio' ? judged.ratios : judged.differences, tail);
    case 'estimate':
      return tail ? undefined : judged.interval.estimate;
    case 'low':
      return tail ? undefined : judged.interval.low;
    case 'high':
      return tail ? undefined : judged.interval.high;
    case 'n':
      return tail ? undefined : judged.interval.n;
    case 'goal':
      return tail ? undefined : goalValue(judged.figure.goal);
    case 'floor':
      return tail ? undefined : judged.figure.floor?.value;
    case 'verdict':
      return tail ? undefined : judged.verdict;
    default:
      return undefined;
  }
}

const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;

/** Replaces every token of `text`; throws on the first that does not resolve, naming it and `where`. */
export function resolveTokens(text: string, figures: ReadonlyMap<string, Judgement>, where: string): string {
  return text.replace(TOKEN, (token, id: string, stat: string, digits: string | undefined) => {
    const judged = figures.get(id);
    if (!judged) throw new Error(`${where}: ${token}: no figure "${id}" in these results`);
    const value = statOf(judged, stat);
    if (value === undefined)
      throw new Error(
        `${where}: ${token}: figure "${id}" has no stat "${stat}" (e.g. subject.median, baseline.max, ratio.min, difference.median, estimate, low, high, goal, floor, verdict, n)`,
      );
    if (typeof value === 'string') return value;
    // No interval from one sample (the smoke profile): a dash, as the figures table shows it, not a failed report.
    if (!Number.isFinite(value)) return '–';
    return fmt(value, digits === undefined ? undefined : Number(digits));
  });
}

/** What is left of a text once tokens, code spans and fenced code are taken out: where no number may stand bare. */
export function prose(text: string): string {
  return (
    text
      .replace(/```[\s\S]*?```/g, ' ')
      .replace(/`[^`\n]*`/g, ' ')
      .replace(/<!--[\s\S]*?-->/g, ' ')
      .replace(TOKEN, ' ')
      // Not measurements: the intervals' level, and ×1 (no difference from the baseline).
      .replace(/\b95 %/g, ' ')
      .replace(/×1(?![\d.,])/g, ' ')
  );
}

/** A measured number written by hand: digits followed by a unit (s, ms, MiB, MB, %, /s, ×…) or a bare ×1.2. */
export const BARE_NUMBER =
  /(?:×\s?\d[\d.,]*)|(?:\b\d[\d.,]*\s?(?:%|(?:ms|µs|s|min|MiB|GiB|KiB|MB|GB|kB|Mbit\/s|MB\/s|\/s|tasks\/s|req\/s|heartbeats\/s|CPU s)\b))/g;
