import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BENCH_DIR, REPO_DIR } from '../lib/util.js';
import { readResults, writeReport } from '../report.js';

describe('docs/BENCHMARKS.md', () => {
  const docs = mkdtempSync(join(tmpdir(), 'ra-h1-report-'));
  afterAll(() => rmSync(docs, { recursive: true, force: true }));

  it('is exactly what bench/report.ts makes from bench/results/ (so it cannot drift from the data)', async () => {
    const markdown = await writeReport(join(BENCH_DIR, 'results'), docs, { plot: false });
    expect(markdown).toBe(readFileSync(join(REPO_DIR, 'docs', 'BENCHMARKS.md'), 'utf8'));
    expect(existsSync(join(docs, 'bench-ratios.png'))).toBe(false);
  });

  it('lists, never drops silently, a results file it cannot use', () => {
    const results = readResults(join(BENCH_DIR, 'results'));
    const markdown = readFileSync(join(REPO_DIR, 'docs', 'BENCHMARKS.md'), 'utf8');
    for (const skipped of results.skipped) expect(markdown).toContain(`\`${skipped.file}\``);
  });
});
