import { describe, expect, it } from 'vitest';
import type { Figure } from '../lib/figure.js';
import { logRatioInterval, tInterval } from '../lib/stats.js';
import { judge } from '../lib/verdict.js';

const figure = (over: Partial<Figure>): Figure => ({
  id: 'test.area.name',
  section: 'Test',
  label: 'a figure',
  unit: 's',
  subject: { label: 'agent', samples: [1, 2, 3, 4, 5] },
  baseline: null,
  goal: { kind: 'none' },
  ...over,
});

describe('intervals (known answers, computed by hand with t(0.975, n−1))', () => {
  it('t interval of 1..5: 3 ± 2.776445 · 1.581139 / √5', () => {
    const interval = tInterval([1, 2, 3, 4, 5]);
    expect(interval.estimate).toBe(3);
    expect(interval.low).toBeCloseTo(1.036757, 5);
    expect(interval.high).toBeCloseTo(4.963243, 5);
  });

  it('t interval of differences 0.2, 0.4, 0.3, 0.5: 0.35 ± 3.182446 · 0.129099 / 2', () => {
    const interval = tInterval([0.2, 0.4, 0.3, 0.5]);
    expect(interval.low).toBeCloseTo(0.144574, 5);
    expect(interval.high).toBeCloseTo(0.555426, 5);
  });

  it('log-ratio interval: geometric mean ratio and its bounds', () => {
    const interval = logRatioInterval([0.52, 0.9, 1.11, 1.3, 1.68]);
    expect(interval.estimate).toBeCloseTo(1.025568, 5);
    expect(interval.low).toBeCloseTo(0.591789, 5);
    expect(interval.high).toBeCloseTo(1.777303, 5);
  });

  it('one value has no interval', () => {
    const interval = tInterval([4]);
    expect(interval.estimate).toBe(4);
    expect(Number.isNaN(interval.low)).toBe(true);
  });
});

describe('verdicts', () => {
  const ratio = (subject: number[], baseline: number[], value = 0.99): Figure =>
    figure({
      subject: { label: 'agent', samples: subject },
      baseline: { label: 'plain', samples: baseline },
      goal: { kind: 'ratio-at-least', value },
    });

  it('a wide spread (0.52–1.68 over 5 runs) is inconclusive for ≥ 0.99, though its median is above', () => {
    const judged = judge(ratio([0.52, 0.9, 1.11, 1.3, 1.68], [1, 1, 1, 1, 1]));
    expect(judged.ratios?.median).toBeGreaterThan(0.99);
    expect(judged.verdict).toBe('inconclusive');
    expect(judged.reasons).toContain('the 95 % interval spans the goal');
  });

  it('met when the lower bound clears the goal, missed when even the upper bound fails', () => {
    expect(judge(ratio([101, 102, 100.5, 101.5], [100, 100, 100, 100])).verdict).toBe('met');
    expect(judge(ratio([90, 91, 92, 90.5], [100, 100, 100, 100])).verdict).toBe('missed');
  });

  it('difference-at-most uses the upper bound', () => {
    const diff = (subject: number[]) =>
      judge(
        figure({
          subject: { label: 'agent', samples: subject },
          baseline: { label: 'plain', samples: [1, 1, 1, 1] },
          goal: { kind: 'difference-at-most', value: 0.6 },
        }),
      );
    // Differences 0.2, 0.4, 0.3, 0.5: interval 0.145–0.555, all under 0.6.
    expect(diff([1.2, 1.4, 1.3, 1.5]).verdict).toBe('met');
    expect(diff([1.2, 1.4, 1.3, 1.5]).interval.high).toBeCloseTo(0.555426, 5);
    // Under 0.5 the upper bound 0.555 fails but the lower 0.145 passes.
    const half = judge(
      figure({
        subject: { label: 'agent', samples: [1.2, 1.4, 1.3, 1.5] },
        baseline: { label: 'plain', samples: [1, 1, 1, 1] },
        goal: { kind: 'difference-at-most', value: 0.5 },
      }),
    );
    expect(half.verdict).toBe('inconclusive');
    expect(diff([2, 2.2, 2.1, 2.3]).verdict).toBe('missed');
  });

  it('at-most and at-least judge the subject alone', () => {
    expect(judge(figure({ goal: { kind: 'at-most', value: 5 } })).verdict).toBe('met');
    expect(judge(figure({ goal: { kind: 'at-most', value: 4 } })).verdict).toBe('inconclusive');
    expect(judge(figure({ goal: { kind: 'at-most', value: 1 } })).verdict).toBe('missed');
    expect(judge(figure({ goal: { kind: 'at-least', value: 1 } })).verdict).toBe('met');
  });

  it('a failed check forces missed, naming the check', () => {
    const judged = judge({
      ...ratio([101, 102, 100.5, 101.5], [100, 100, 100, 100]),
      checks: [
        { what: 'answered ≥ 99 % of the offered rate', ok: false },
        { what: 'all tasks finished', ok: true },
      ],
    });
    expect(judged.verdict).toBe('missed');
    expect(judged.reasons).toEqual(['check failed: answered ≥ 99 % of the offered rate']);
  });

  it('an exact single sample is its own interval; a non-exact one is inconclusive', () => {
    const size = figure({
      unit: 'MB',
      subject: { label: 'image', samples: [280] },
      goal: { kind: 'at-most', value: 300 },
    });
    const exact = judge({ ...size, exact: true });
    expect(exact.verdict).toBe('met');
    expect([exact.interval.low, exact.interval.high]).toEqual([280, 280]);
    expect(judge({ ...size, exact: true, goal: { kind: 'at-most', value: 250 } }).verdict).toBe('missed');
    const single = judge(size);
    expect(single.verdict).toBe('inconclusive');
    expect(single.reasons[0]).toMatch(/at least 2/);
  });

  it('goal none is context', () => {
    expect(judge(figure({})).verdict).toBe('context');
  });

  it('rejects NaN, empty samples, missing or unpaired baselines and non-positive ratios, naming the figure', () => {
    expect(() => judge(figure({ subject: { label: 'agent', samples: [1, Number.NaN] } }))).toThrow(
      /test\.area\.name: subject\.samples\.1/,
    );
    expect(() => judge(figure({ subject: { label: 'agent', samples: [] } }))).toThrow(/subject\.samples is empty/);
    expect(() => judge(figure({ goal: { kind: 'ratio-at-least', value: 1 } }))).toThrow(/baseline is null/);
    expect(() => judge(ratio([1, 2], [1]))).toThrow(/baseline\.samples has 1 values, subject\.samples 2/);
    expect(() => judge(ratio([1, 0], [1, 1]))).toThrow(/positive samples/);
  });
});

describe('context figures', () => {
  it('with a paired positive baseline show the ratio; without, the subject', () => {
    const withBaseline = judge(
      figure({ subject: { label: 'a', samples: [2, 4] }, baseline: { label: 'b', samples: [1, 2] } }),
    );
    expect(withBaseline.quantity).toBe('ratio');
    expect(withBaseline.interval.estimate).toBeCloseTo(2, 10);
    expect(withBaseline.verdict).toBe('context');
    expect(judge(figure({})).quantity).toBe('value');
  });
});
