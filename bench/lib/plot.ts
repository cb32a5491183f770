import { chromium } from 'playwright-core';

export interface Series {
  name: string;
  color: string;
  values: number[];
}

export interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
}

const WIDTH = 520;
const HEIGHT = 340;
const M = { top: 48, right: 20, bottom: 62, left: 64 };

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A "nice" axis maximum and step for values up to `max`. */
function axis(max: number): { top: number; step: number } {
  const raw = max / 5;
  const power = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * power).find((s) => s >= raw) ?? raw;
  return { top: Math.ceil((max * 1.05) / step) * step, step };
}

/** One panel: each series per repetition, as lines with points, on a y axis from zero. */
function panelSvg(panel: Panel, x0: number): string {
  const w = WIDTH - M.left - M.right;
  const h = HEIGHT - M.top - M.bottom;
  const n = Math.max(...panel.series.map((s) => s.values.length));
  const { top, step } = axis(Math.max(...panel.series.flatMap((s) => s.values)));
  const px = (i: number) => x0 + M.left + (n === 1 ? w / 2 : (i * w) / (n - 1));
  const py = (v: number) => M.top + h - (v / top) * h;
  const parts: string[] = [];
  parts.push(
    `<text x="${x0 + WIDTH / 2}" y="24" text-anchor="middle" font-size="15" font-weight="600">${escapeXml(panel.title)}</text>`,
  );
  for (let v = 0; v <= top + 1e-9; v += step) {
    parts.push(`<line x1="${x0 + M.left}" x2="${x0 + M.left + w}" y1="${py(v)}" y2="${py(v)}" stroke="#ddd"/>`);
    parts.push(
      `<text x="${x0 + M.left - 8}" y="${py(v) + 4}" text-anchor="end" font-size="11">${Number(v.toFixed(6))}</text>`,
    );
  }
  for (let i = 0; i < n; i++)
    parts.push(`<text x="${px(i)}" y="${M.top + h + 18}" text-anchor="middle" font-size="11">${i + 1}</text>`);
  parts.push(
    `<text x="${x0 + M.left + w / 2}" y="${M.top + h + 38}" text-anchor="middle" font-size="12">repetition (pairs alternate which node goes first)</text>`,
  );
  parts.push(
    `<text transform="translate(${x0 + 16},${M.top + h / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escapeXml(panel.yLabel)}</text>`,
  );
  parts.push(`<line x1="${x0 + M.left}" x2="${x0 + M.left}" y1="${M.top}" y2="${M.top + h}" stroke="#333"/>`);
  parts.push(`<line x1="${x0 + M.left}" x2="${x0 + M.left + w}" y1="${M.top + h}" y2="${M.top + h}" stroke="#333"/>`);
  panel.series.forEach((series, k) => {
    const points = series.values.map((v, i) => `${px(i)},${py(v)}`).join(' ');
    parts.push(`<polyline points="${points}" fill="none" stroke="${series.color}" stroke-width="2"/>`);
    for (const [i, v] of series.values.entries())
      parts.push(
        `<circle cx="${px(i)}" cy="${py(v)}" r="4" fill="${series.color}"><title>${v.toFixed(2)}</title></circle>`,
      );
    const ly = HEIGHT - 10;
    const lx = x0 + M.left + k * 200;
    parts.push(`<rect x="${lx}" y="${ly - 9}" width="12" height="12" fill="${series.color}"/>`);
    parts.push(`<text x="${lx + 18}" y="${ly + 1}" font-size="12">${escapeXml(series.name)}</text>`);
  });
  return parts.join('\n');
}

export function chartSvg(panels: Panel[], caption: string): string {
  const width = WIDTH * panels.length;
  const height = HEIGHT + 30;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${panels.map((panel, i) => panelSvg(panel, i * WIDTH)).join('\n')}
<text x="${width / 2}" y="${height - 6}" text-anchor="middle" font-size="11" fill="#555">${escapeXml(caption)}</text>
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
