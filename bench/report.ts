// Regenerates docs/BENCHMARKS.md (and docs/bench-ratios.png) from the raw results (bench/results/*.json).
//   npx tsx bench/report.ts [--results DIR] [--docs DIR] [--no-plot]
// Every number comes from the results: figures from each suite's figuresOf(data), judged by bench/lib/verdict.ts;
// detail tables from its details(data); the prose of bench/analysis/*.md cites numbers only as tokens, resolved here.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Goal } from './lib/figure.js';
import { fmt, signed } from './lib/format.js';
import { intervalChartSvg, renderPng } from './lib/plot.js';
import { AnyResult } from './lib/schema.js';
import type { Summary } from './lib/stats.js';
import { resolveTokens } from './lib/tokens.js';
import { BENCH_DIR, log, REPO_DIR } from './lib/util.js';
import { type Judgement, judge } from './lib/verdict.js';
import { type AnySuite, SUITES } from './suites/index.js';

export const ANALYSIS_DIR = join(BENCH_DIR, 'analysis');
/** An analysis file that starts with this is not yet in token form: the report leaves it out and says so. */
export const DRAFT_MARK = '<!-- draft:';
/** Results files the runner writes from now on carry it; older ones are listed as to be regenerated. */
export const FORMAT = 2;
const PLOT = 'bench-ratios.png';

export interface Loaded {
  suite: AnySuite;
  result: AnyResult;
  data: unknown;
}

export interface Results {
  loaded: Loaded[];
  /** Files the report could not use, and why (no such suite, an older format): shown, never silently dropped. */
  skipped: Array<{ file: string; why: string }>;
}

/** Reads every results file in `dir`, checks it against the envelope and its suite's schema (throws naming both). */
export function readResults(dir: string): Results {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  const loaded: Loaded[] = [];
  const skipped: Results['skipped'] = [];
  for (const file of files.sort()) {
    const raw = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;
    const suite = SUITES.find((s) => s.name === raw.suite);
    if (!suite) {
      skipped.push({ file, why: `no suite "${String(raw.suite)}" in bench/suites/index.ts` });
      continue;
    }
    if (raw.format !== FORMAT) {
      skipped.push({
        file,
        why: `written by an older bench: regenerate with \`npx tsx bench/run.ts --only ${suite.name}\``,
      });
      continue;
    }
    const envelope = AnyResult.safeParse(raw);
    const data = envelope.success ? suite.data.safeParse(raw.data) : undefined;
    const issue = envelope.success ? data?.success === false && data.error.issues[0] : envelope.error.issues[0];
    if (issue)
      throw new Error(
        `${join(dir, file)}: ${envelope.success ? 'data.' : ''}${issue.path.join('.')}: ${issue.message} (the ${suite.name} suite's schema: bench/suites/${suite.name}/)`,
      );
    if (!envelope.success || !data?.success) throw new Error(`${join(dir, file)}: unreadable`);
    loaded.push({ suite, result: envelope.data, data: data.data });
  }
  // The registry's order, which is the report's.
  loaded.sort((a, b) => SUITES.indexOf(a.suite) - SUITES.indexOf(b.suite));
  return { loaded, skipped };
}

/** Every figure of the loaded results, judged, in the registry's order; ids must be unique. */
export function allFigures(results: Results): Judgement[] {
  const judged = results.loaded.flatMap(({ suite, data }) => suite.figuresOf(data).map((figure) => judge(figure)));
  const seen = new Set<string>();
  for (const j of judged) {
    if (seen.has(j.figure.id)) throw new Error(`figure id ${j.figure.id} is used twice`);
    seen.add(j.figure.id);
  }
  return judged;
}

const spread = (s: Summary) => (s.n > 1 ? ` (${fmt(s.min)}–${fmt(s.max)})` : '');

function goalText(goal: Goal, unit: string): string {
  switch (goal.kind) {
    case 'ratio-at-least':
      return `ratio ≥ ${goal.value}`;
    case 'ratio-at-most':
      return `ratio ≤ ${goal.value}`;
    case 'difference-at-most':
      return `≤ baseline ${signed(goal.value)} ${unit}`;
    case 'at-most':
      return `≤ ${fmt(goal.value)} ${unit}`;
    case 'at-least':
      return `≥ ${fmt(goal.value)} ${unit}`;
    default:
      return '–';
  }
}

function compared(j: Judgement): string {
  const { estimate, low, high } = j.interval;
  const range = Number.isFinite(low)
    ? ` [${fmt(low, j.quantity === 'ratio' ? 3 : undefined)}, ${fmt(high, j.quantity === 'ratio' ? 3 : undefined)}]`
    : ' [n < 2]';
  if (j.quantity === 'ratio') return `×${fmt(estimate, 3)}${range}`;
  if (j.quantity === 'difference') return `${signed(estimate)} ${j.figure.unit}${range}`;
  return `${fmt(estimate)} ${j.figure.unit}${range}`;
}

const VERDICT = { met: '**met**', missed: '**missed**', inconclusive: 'inconclusive', context: 'context' };

function figuresTable(judged: Judgement[]): string {
  const rows = [
    '| Figure | Subject: median (min–max), n | Baseline, same run: median (min–max) | Compared: estimate [95 % interval] | Goal | Verdict | Floor |',
    '|---|---|---|---|---|---|---|',
  ];
  let section = '';
  for (const j of judged) {
    const f = j.figure;
    if (f.section !== section) {
      section = f.section;
      rows.push(`| **${section}** | | | | | | |`);
    }
    const baseline =
      j.baseline && f.baseline ? `${fmt(j.baseline.median)}${spread(j.baseline)} — ${f.baseline.label}` : '';
    const reasons = j.reasons.length ? ` (${j.reasons.join('; ')})` : '';
    const floor = f.floor ? `${fmt(f.floor.value)} ${f.unit}: ${f.floor.label}` : '';
    rows.push(
      `| ${f.label} \`${f.id}\` | ${fmt(j.subject.median)}${spread(j.subject)}, n=${j.subject.n} — ${f.subject.label} | ${baseline} | ${compared(j)} | ${goalText(f.goal, f.unit)} | ${VERDICT[j.verdict]}${reasons} | ${floor} |`,
    );
  }
  return rows.map((row) => row.replace(/\n/g, ' ')).join('\n');
}

function machineTable(results: Results): string {
  const rows = [
    '| Suite | Profile, run | Started (UTC) | Machine | 1-min load at start / end | Others’ containers |',
    '|---|---|---|---|---|---|',
  ];
  for (const { result: r } of results.loaded) {
    const m = r.machine;
    rows.push(
      `| ${r.suite} | ${r.profile}, \`${r.runId}\` | ${r.startedAt.slice(0, 16).replace('T', ' ')} | ${m.nproc} cores (${m.cpuModel}), ${fmt(m.memoryBytes / 1024 ** 3, 1)} GiB, ${m.os}, kernel ${m.kernel}, Docker ${m.docker}, Node.js ${m.node} | ${m.loadAverage.map((l) => fmt(l, 1)).join(' / ')} | ${m.otherContainers} |`,
    );
  }
  const skipped = results.skipped.map((s) => `- Not in this report: \`${s.file}\`: ${s.why}.`);
  return [rows.join('\n'), ...(skipped.length ? ['', ...skipped] : [])].join('\n');
}

function commands(): string {
  return [
    '| What | Command |',
    '|---|---|',
    '| Everything (full profile; regenerates this file) | `npm run bench` |',
    '| A quick look | `npx tsx bench/run.ts --profile quick` |',
    `| One suite | \`npx tsx bench/run.ts --only NAME\` (${SUITES.map((s) => `\`${s.name}\``).join(', ')}) |`,
    '| Only this report, from `bench/results/*.json` | `npx tsx bench/report.ts` |',
    '| CI smoke test (smallest profile; checks results and verdicts) | `npx vitest run --project e2e e2e/bench-smoke.test.ts` |',
  ].join('\n');
}

/** An analysis file's text with its tokens resolved, or null when it is absent or still a draft. */
function analysisOf(name: string, figures: ReadonlyMap<string, Judgement>): string | null {
  const file = join(ANALYSIS_DIR, `${name}.md`);
  if (!existsSync(file)) return null;
  const text = readFileSync(file, 'utf8').trim();
  if (text.startsWith(DRAFT_MARK)) return null;
  return resolveTokens(text, figures, `bench/analysis/${name}.md`);
}

/** The whole report's markdown: a pure function of the results and bench/analysis/ (no clock, no machine). */
export function renderReport(results: Results, withPlot: boolean): string {
  const judged = allFigures(results);
  const figures = new Map(judged.map((j) => [j.figure.id, j]));
  const counts = (['met', 'missed', 'inconclusive', 'context'] as const)
    .map((v) => `${judged.filter((j) => j.verdict === v).length} ${v}`)
    .join(', ');
  // A suite that measured nothing (boinc without boinc-client) has no figures for its prose to cite.
  const analyses = results.loaded
    .filter(({ suite, data }) => suite.figuresOf(data).length > 0)
    .map(({ suite }) => ({ suite, text: analysisOf(suite.name, figures) }));
  const drafts = analyses.filter((a) => a.text === null && existsSync(join(ANALYSIS_DIR, `${a.suite.name}.md`)));
  const method = analysisOf('method', figures);
  const parts = [
    '# Benchmarks',
    '',
    '<!-- Generated by bench/report.ts from bench/results/*.json and bench/analysis/*.md; edit those, not this file. -->',
    '',
    'What the agent costs a person and delivers to the cluster, each figure measured beside its baseline in the same',
    'run, repetitions in alternating order. A verdict is **met** only when the bound of the 95 % interval that is',
    'hardest for the subject meets the goal, **missed** when even the favourable bound fails it (or a check of the',
    'measurement failed), and inconclusive otherwise (bench/analysis/README.md says how the intervals are made).',
    '',
    '## Run',
    '',
    commands(),
    '',
    '## Machine and date',
    '',
    machineTable(results),
    '',
    '## Figures',
    '',
    `${judged.length} figures: ${counts}.`,
    '',
    figuresTable(judged),
    '',
    withPlot ? `![Every ratio figure with its 95 % interval and goal](${PLOT})\n` : '',
    '## What limits each figure',
    '',
    ...analyses.filter((a) => a.text !== null).map((a) => `${a.text}\n`),
    ...drafts.map(
      (a) =>
        `- The analysis of \`${a.suite.name}\` is being rewritten in token form (bench/analysis/${a.suite.name}.md).\n`,
    ),
    '## Details',
    '',
    ...results.loaded.map(({ suite, data }) => `### ${suite.name}\n\n${suite.details(data).trim()}\n`),
    '## How it is measured',
    '',
    method ?? '',
  ];
  return `${parts
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim()}\n`;
}

/** The chart of every ratio figure with its interval (headless Chromium), written beside the report. */
async function writePlot(judged: Judgement[], file: string): Promise<void> {
  const rows = judged
    .filter((j) => j.quantity === 'ratio')
    .map((j) => ({
      label: j.figure.id,
      estimate: j.interval.estimate,
      low: j.interval.low,
      high: j.interval.high,
      goal: j.figure.goal.kind.startsWith('ratio') && 'value' in j.figure.goal ? j.figure.goal.value : null,
      verdict: j.verdict,
    }));
  if (!rows.length) return;
  await renderPng(
    intervalChartSvg(
      rows,
      'colour: verdict (green met, red missed, orange inconclusive, blue context); black tick: goal',
    ),
    file,
  );
}

export async function writeReport(
  resultsDir = join(BENCH_DIR, 'results'),
  docsDir = join(REPO_DIR, 'docs'),
  options: { plot?: boolean } = {},
): Promise<string> {
  const results = readResults(resultsDir);
  const markdown = renderReport(results, true);
  mkdirSync(docsDir, { recursive: true });
  if (options.plot !== false) await writePlot(allFigures(results), join(docsDir, PLOT));
  const file = join(docsDir, 'BENCHMARKS.md');
  writeFileSync(file, markdown);
  log(`wrote ${file}${options.plot !== false ? ` and ${join(docsDir, PLOT)}` : ''}`);
  return markdown;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: { results: { type: 'string' }, docs: { type: 'string' }, 'no-plot': { type: 'boolean', default: false } },
  });
  await writeReport(
    values.results ? resolve(values.results) : undefined,
    values.docs ? resolve(values.docs) : undefined,
    {
      plot: !values['no-plot'],
    },
  );
}
