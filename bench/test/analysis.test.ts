import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BARE_NUMBER, prose, resolveTokens } from '../lib/tokens.js';
import { judge } from '../lib/verdict.js';
import { ANALYSIS_DIR, DRAFT_MARK } from '../report.js';

/** The analysis prose may cite measured numbers only through tokens (bench/analysis/README.md). */
const files = readdirSync(ANALYSIS_DIR).filter((f) => f.endsWith('.md') && f !== 'README.md');

describe('bench/analysis/*.md', () => {
  for (const file of files) {
    const text = readFileSync(join(ANALYSIS_DIR, file), 'utf8');
    it.skipIf(text.startsWith(DRAFT_MARK))(`${file} has no bare measured number`, () => {
      expect(prose(text).match(BARE_NUMBER) ?? []).toEqual([]);
    });
  }

  it('the check catches numbers with units, ratios and percentages, not versions, counts or tokens', () => {
    const bad = ['took 0.61 s', 'about 40 MiB', '12 % of one core', '5,000/s', '×1.39 as fast', '593 MB', '9 ms'];
    for (const text of bad) expect(prose(text).match(BARE_NUMBER), text).not.toBeNull();
    const fine = ['Python 3.11.2 on 2 cores', '{{nodes.compute.cpu:ratio.median}} s', 'in `--cpus=2 --memory=4g`'];
    for (const text of fine) expect(prose(text).match(BARE_NUMBER), text).toBeNull();
  });
});

describe('tokens', () => {
  const figures = new Map([
    [
      'test.join.time',
      judge({
        id: 'test.join.time',
        section: 'Test',
        label: 'join',
        unit: 's',
        subject: { label: 'agent', samples: [1.2, 1.4, 1.3, 1.5] },
        baseline: { label: 'plain', samples: [1, 1, 1, 1] },
        goal: { kind: 'difference-at-most', value: 0.6 },
      }),
    ],
    [
      'test.join.once',
      judge({
        id: 'test.join.once',
        section: 'Test',
        label: 'join, one repetition',
        unit: 's',
        subject: { label: 'agent', samples: [1.2] },
        baseline: { label: 'plain', samples: [1] },
        goal: { kind: 'ratio-at-most', value: 1.5 },
      }),
    ],
  ]);

  it('resolve to the figure’s stats', () => {
    expect(resolveTokens('{{test.join.time:subject.median}} s', figures, 'x')).toBe('1.35 s');
    expect(resolveTokens('{{test.join.time:difference.high:2}}', figures, 'x')).toBe('0.56');
    expect(resolveTokens('{{test.join.time:goal}} / {{test.join.time:verdict}}', figures, 'x')).toBe('0.600 / met');
  });

  it('a stat one sample cannot give (an interval) is a dash, and the median is still there', () => {
    expect(resolveTokens('{{test.join.once:ratio.low}}–{{test.join.once:ratio.high}}', figures, 'x')).toBe('–––');
    expect(resolveTokens('{{test.join.once:ratio.median:2}}', figures, 'x')).toBe('1.20');
  });

  it('an absent figure or an unknown stat is an error naming the token and the file', () => {
    expect(() => resolveTokens('{{test.nope.x:subject.median}}', figures, 'a.md')).toThrow(
      /a\.md: \{\{test\.nope\.x:subject\.median\}\}: no figure "test\.nope\.x"/,
    );
    expect(() => resolveTokens('{{test.join.time:subject.mode}}', figures, 'a.md')).toThrow(/no stat "subject\.mode"/);
    expect(() => resolveTokens('{{test.join.time:ratio.low}}', figures, 'a.md')).toThrow(/no stat "ratio\.low"/);
  });
});
