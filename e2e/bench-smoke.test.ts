import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from './support/run.js';

/**
 * The benchmarks (bench/, `npm run bench`) on their smallest setting: they must run end to end on this machine and
 * write results the report can read. No figure is compared with any threshold here: speed is for BENCHMARKS.md.
 */
const REPO = join(import.meta.dirname, '..');

interface Figure {
  section: string;
  name: string;
  subject: { n: number; median: number };
  met: boolean | null;
}
interface ReportModule {
  readResults(dir: string): Record<string, unknown>;
  allFigures(results: Record<string, unknown>): Figure[];
  writeReport(resultsDir: string, docsDir: string): Promise<void>;
}

describe('benchmarks, smoke setting', () => {
  const out = mkdtempSync(join(tmpdir(), 'ray-bench-smoke-results-'));
  const docs = mkdtempSync(join(tmpdir(), 'ray-bench-smoke-docs-'));
  afterAll(() => {
    rmSync(out, { recursive: true, force: true });
    rmSync(docs, { recursive: true, force: true });
  });

  it('run every suite and write well-formed results, from which the report and the plot are made', async () => {
    const result = await run(
      join(REPO, 'node_modules', '.bin', 'tsx'),
      [join(REPO, 'bench', 'run.ts'), '--profile', 'smoke', '--out', out, '--no-report'],
      // The overlay suite makes a whole overlay system (manager, gateway, head, two homes behind NAT routers).
      { timeoutMs: 720_000 },
    );
    expect(result.code, result.stderr.slice(-4000)).toBe(0);

    // Imported by path: the bench is not part of the e2e TypeScript project.
    const report = (await import(pathToFileURL(join(REPO, 'bench', 'report.ts')).href)) as ReportModule;
    // readResults checks every file against bench/lib/schema.ts (zod) and throws on a malformed one.
    const results = report.readResults(out);
    expect(Object.keys(results).sort()).toEqual(['boinc', 'image', 'manager', 'nodes', 'overlay', 'python']);

    const figures = report.allFigures(results);
    const sections = new Set(figures.map((figure) => figure.section.split('.')[0]));
    for (const section of ['1', '2', '3', '4', '5', '6', '7', '8'])
      expect(sections, `section ${section}`).toContain(section);
    for (const figure of figures) {
      expect(figure.subject.n, figure.name).toBeGreaterThan(0);
      expect(Number.isFinite(figure.subject.median), figure.name).toBe(true);
    }

    await report.writeReport(out, docs);
    const markdown = readFileSync(join(docs, 'BENCHMARKS.md'), 'utf8');
    expect(markdown).toContain('## Figures');
    expect(markdown).toContain('bench-throughput.png');
    const png = join(docs, 'bench-throughput.png');
    expect(existsSync(png)).toBe(true);
    expect(readFileSync(png).subarray(1, 4).toString('latin1')).toBe('PNG');
  }, 780_000);
});
