import { z } from 'zod';

/**
 * One figure of docs/BENCHMARKS.md: what a suite measured of its subject and, in the same run, of its baseline.
 * Suites keep their raw data in bench/results/SUITE.json; each suite's `figuresOf(data)` (pure) turns that data into
 * figures, and the report judges every figure the same way (bench/lib/verdict.ts). So no number and no verdict of
 * the report is written by hand: each regenerates from the results files.
 */

const finite = z.number().finite();

/**
 * What the figure must reach. `ratio-*` and `difference-*` compare the subject with the baseline sample of the same
 * repetition (index i of both arrays, measured back to back); `at-*` judge the subject alone. `none`: context only.
 * A goal is met only when the whole 95 % interval of the compared quantity is on the goal's side (the bound that
 * is hardest for the subject), missed when the whole interval is on the other side, otherwise inconclusive.
 */
export const Goal = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('ratio-at-least'), value: finite }),
  z.object({ kind: z.literal('ratio-at-most'), value: finite }),
  z.object({ kind: z.literal('difference-at-most'), value: finite }),
  z.object({ kind: z.literal('at-most'), value: finite }),
  z.object({ kind: z.literal('at-least'), value: finite }),
  z.object({ kind: z.literal('none') }),
]);
export type Goal = z.infer<typeof Goal>;

export const Arm = z.object({
  /** Who was measured, in the report's words: "agent container", "plain Ray container, same image". */
  label: z.string().min(1),
  /** One value per repetition, in repetition order. */
  samples: z.array(finite),
});
export type Arm = z.infer<typeof Arm>;

/** A condition the measurement itself must satisfy to count, e.g. "answered ≥ 99 % of the offered rate". */
export const Check = z.object({ what: z.string().min(1), ok: z.boolean() });
export type Check = z.infer<typeof Check>;

export const Figure = z.object({
  /** Stable, dotted: `SUITE.AREA.NAME` (`nodes.compute.cpu`). bench/ANALYSIS.md cites figures by it. */
  id: z.string().regex(/^[a-z0-9]+(\.[a-z0-9-]+)+$/),
  /** The report's section heading, e.g. "Compute delivered". Figures of one section are shown together. */
  section: z.string().min(1),
  label: z.string().min(1),
  /** The samples' unit as printed: "tasks/s", "s", "MiB", "% of one core", "ms", "MB", "heartbeats/s". */
  unit: z.string().min(1),
  subject: Arm,
  /** Null when the goal is absolute (`at-*`, `none`) and there is no baseline. */
  baseline: Arm.nullable(),
  goal: Goal,
  /**
   * True for a deterministic measure (an image's size): a single sample is the exact value and its interval is
   * that value. Otherwise at least 2 samples (pairs) are needed for an interval; fewer is inconclusive.
   */
  exact: z.boolean().default(false),
  /** Every check must hold or the figure's verdict is "missed", whatever its interval (reasons are shown). */
  checks: z.array(Check).default([]),
  /** A floor the subject cannot go under (Node.js' own footprint), shown beside the figure. */
  floor: z.object({ label: z.string().min(1), value: finite }).optional(),
});
export type Figure = z.input<typeof Figure>;
export type ParsedFigure = z.output<typeof Figure>;

export const Verdict = z.enum(['met', 'missed', 'inconclusive', 'context']);
export type Verdict = z.infer<typeof Verdict>;
