import { chromium } from 'playwright-core';

/** One row of the interval chart: a ratio figure's estimate, its 95 % interval, and its goal. */
export interface IntervalRow {
  label: string;
  estimate: number;
  low: number;
  high: number;
  goal: number | null;
  verdict: string;
}

const COLORS: Record<string, string> = {
  met: '#2ca02c',
  missed: '#d62728',
  inconclusive: '#ff7f0e',
  context: '#1f77b4',
};
const ROW = 26;
const LEFT = 430;
const PLOT = 420;
const TOP = 40;

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Every ratio figure on one log axis: the point is the geometric mean ratio, the bar its 95 % interval, the tick the
 * goal, the dashed line ×1 (no difference from the baseline). Colour: the verdict.
 */
export function intervalChartSvg(rows: IntervalRow[], caption: string): string {
  const finite = rows
    .flatMap((r) => [r.low, r.high, r.estimate, r.goal ?? 1])
    .filter((v) => Number.isFinite(v) && v > 0);
  const min = Math.min(0.5, ...finite);
  const max = Math.max(2, ...finite);
  const [lo, hi] = [Math.log(min), Math.log(max)];
  const x = (v: number) => LEFT + ((Math.log(Math.min(max, Math.max(min, v))) - lo) / (hi - lo)) * PLOT;
  const height = TOP + rows.length * ROW + 50;
  const width = LEFT + PLOT + 30;
  const parts = [
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="14" font-weight="600">Subject ÷ same-run baseline: geometric mean and 95 % interval</text>`,
  ];
  // Ticks at least 36 px apart, ×1 always among them.
  const ticks: number[] = [];
  for (const t of [1, 0.5, 2, 0.25, 4, 0.1, 10, 0.01, 100, 0.001, 1000].filter((t) => t >= min && t <= max))
    if (ticks.every((u) => Math.abs(x(u) - x(t)) >= 36)) ticks.push(t);
  for (const tick of ticks) {
    const dash = tick === 1 ? ' stroke-dasharray="4 3" stroke="#333"' : ' stroke="#ddd"';
    parts.push(`<line x1="${x(tick)}" x2="${x(tick)}" y1="${TOP - 6}" y2="${TOP + rows.length * ROW}"${dash}/>`);
    parts.push(
      `<text x="${x(tick)}" y="${TOP + rows.length * ROW + 16}" text-anchor="middle" font-size="11">×${tick}</text>`,
    );
  }
  rows.forEach((row, i) => {
    const y = TOP + i * ROW + ROW / 2;
    const color = COLORS[row.verdict] ?? '#555';
    parts.push(`<text x="${LEFT - 10}" y="${y + 4}" text-anchor="end" font-size="11">${escapeXml(row.label)}</text>`);
    if (Number.isFinite(row.low) && Number.isFinite(row.high))
      parts.push(
        `<line x1="${x(row.low)}" x2="${x(row.high)}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="3"/>`,
      );
    if (row.goal !== null)
      parts.push(
        `<line x1="${x(row.goal)}" x2="${x(row.goal)}" y1="${y - 8}" y2="${y + 8}" stroke="#000" stroke-width="2"/>`,
      );
    if (Number.isFinite(row.estimate))
      parts.push(
        `<circle cx="${x(row.estimate)}" cy="${y}" r="4.5" fill="${color}"><title>${row.estimate.toFixed(3)}</title></circle>`,
      );
  });
  parts.push(
    `<text x="${width / 2}" y="${height - 10}" text-anchor="middle" font-size="11" fill="#555">${escapeXml(caption)}</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${parts.join('\n')}
</svg>`;
}

/** Renders the SVG in headless Chromium (Debian's) and saves a PNG screenshot of it. */
export async function renderPng(svg: string, file: string): Promise<void> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  try {
    const page = await browser.newPage({ deviceScaleFactor: 2 });
    await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
    await page.locator('svg').screenshot({ path: file });
  } finally {
    await browser.close();
  }
}
