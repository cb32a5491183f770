import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from './support/run.js';

/**
 * The benchmarks (bench/, `npm run bench`) on their smallest profile: every suite of the registry must run end to end
 * on this machine, write results its own schema accepts, and give every figure a verdict. No figure is compared with
 * any goal here: speed is for docs/BENCHMARKS.md.
 */
const REPO = join(import.meta.dirname, '..');

interface ReportModule {
  readResults(dir: string): {
    loaded: Array<{ suite: { name: string } }>;
    skipped: Array<{ file: string; why: string }>;
  };
  allFigures(results: unknown): Array<{ figure: { id: string }; verdict: string }>;
  writeReport(resultsDir: string, docsDir: string): Promise<string>;
}
interface RegistryModule {
  SUITES: ReadonlyArray<{ name: string }>;
}

describe('benchmarks, smoke profile', () => {
  const out = mkdtempSync(join(tmpdir(), 'ra-bench-smoke-results-'));
  const docs = mkdtempSync(join(tmpdir(), 'ra-bench-smoke-docs-'));
  afterAll(() => {
    rmSync(out, { recursive: true, force: true });
    rmSync(docs, { recursive: true, force: true });
  });

  it('runs every suite, writes results each suite’s schema accepts, judges every figure and renders the report', async () => {
    const result = await run(
      join(REPO, 'node_modules', '.bin', 'tsx'),
      [join(REPO, 'bench', 'run.ts'), '--profile', 'smoke', '--out', out, '--no-report'],
      // The overlay suite makes a whole overlay system (manager, gateway, head, two homes behind NAT routers).
      { timeoutMs: 720_000 },
    );
    expect(result.code, result.stderr.slice(-4000)).toBe(0);

    // Imported by path: the bench is its own workspace, not part of the e2e TypeScript project.
    const registry = (await import(pathToFileURL(join(REPO, 'bench', 'suites', 'index.ts')).href)) as RegistryModule;
    const report = (await import(pathToFileURL(join(REPO, 'bench', 'report.ts')).href)) as ReportModule;
    const names = registry.SUITES.map((s) => s.name).sort();
    expect(
      readdirSync(out)
        .filter((f) => f.endsWith('.json'))
        .sort(),
    ).toEqual(names.map((n) => `${n}.json`));

    // readResults checks every file against the envelope and its suite's schema (zod) and throws on a malformed one.
    const results = report.readResults(out);
    expect(results.skipped).toEqual([]);
    expect(results.loaded.map((l) => l.suite.name).sort()).toEqual(names);
    const figures = report.allFigures(results);
    expect(figures.length).toBeGreaterThan(0);
    for (const judged of figures)
      expect(['met', 'missed', 'inconclusive', 'context'], judged.figure.id).toContain(judged.verdict);

    const markdown = await report.writeReport(out, docs);
    expect(markdown).toContain('## Figures');
    expect(readFileSync(join(docs, 'BENCHMARKS.md'), 'utf8')).toBe(markdown);
    const png = join(docs, 'bench-ratios.png');
    expect(existsSync(png)).toBe(true);
    expect(readFileSync(png).subarray(1, 4).toString('latin1')).toBe('PNG');
  }, 780_000);
});
