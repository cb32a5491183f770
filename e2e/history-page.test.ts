import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { HistoryDocument, PolicyMode, PolicyReason } from '@ray-agent/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { HistoryStore } from '../controller/src/history/history-store.js';
import { openRenderer, type RendererSession } from './support/renderer-bridge.js';
import { ScriptedService } from './support/renderer-scripted-service.js';

/**
 * The window's history page in headless Chromium: a 30-day history made by the real HistoryStore from generated
 * samples (a person's working days, nights contributing, a trip on battery, a switched-off weekend, two days the
 * controller did not run, a container replaced mid-way), served through 'history:get' and drawn by Chart.js.
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const artifacts = path.join(root, 'e2e', 'artifacts');
let session: RendererSession | null = null;
const dirs: string[] = [];

vi.setConfig({ expect: { poll: { timeout: 30_000 } } });

beforeAll(async () => {
  mkdirSync(artifacts, { recursive: true });
  await promisify(execFile)(process.execPath, ['renderer/build.mjs'], { cwd: root });
}, 120_000);

afterEach(async () => {
  const errors = session?.pageErrors ?? [];
  // ("frame-ancestors is ignored in a meta tag" is the page's own, known notice; a violation says "Refused to".)
  const csp = session?.console.filter((line) => /Refused to/i.test(line)) ?? [];
  await session?.close();
  session = null;
  expect(errors).toEqual([]);
  // Chart.js must draw under the page's CSP (style-src 'self', script-src 'self') without tripping it.
  expect(csp).toEqual([]);
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const STEP_MS = 5 * 60_000; // the store counts steps up to its gap limit (5 min); the real loop samples every 15 s
const DAY_MS = 24 * 3_600_000;

/** What the policy would have said at this local time, in this generated month. */
function stateAt(ms: number, dayIndex: number): { mode: PolicyMode; reason: PolicyReason | null } {
  const hour = new Date(ms).getHours();
  const weekday = new Date(ms).getDay();
  if (dayIndex >= 12 && dayIndex <= 13) return { mode: 'off', reason: 'off' }; // switched off for a weekend
  if (dayIndex === 20 && hour >= 9 && hour < 17) return { mode: 'paused', reason: 'on-battery' }; // a day away
  if (weekday !== 0 && weekday !== 6 && hour >= 9 && hour < 18) {
    // At the desk: the agent steps aside for the grace period, then pauses until the person leaves.
    const minute = new Date(ms).getMinutes();
    return hour === 9 && minute < 10
      ? { mode: 'stepping-aside', reason: 'in-use' }
      : { mode: 'paused', reason: 'in-use' };
  }
  if (hour >= 1 && hour < 6 && dayIndex % 7 === 3) return { mode: 'paused', reason: 'outside-schedule' };
  return { mode: 'contributing', reason: null };
}

let generated: HistoryDocument | null = null;
/** Feeds a real HistoryStore 30 days of samples ending now (once per run), and returns its document. */
function generatedHistory(): { doc: HistoryDocument } {
  generated ??= generate();
  return { doc: generated };
}

function generate(): HistoryDocument {
  // The store writes (and fsyncs) once per generated step of a month: on tmpfs that takes seconds, on a disk minutes.
  const dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'ra-history-page-'));
  dirs.push(dir);
  const store = new HistoryStore(dir);
  const end = Math.floor(Date.now() / STEP_MS) * STEP_MS;
  const start = end - 30 * DAY_MS;
  let cpuNs = 0;
  let tasks = 0;
  let containerId = 'c-first';
  let agentStartedAt = new Date(start).toISOString();
  let seed = 42;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let t = start; t <= end; t += STEP_MS) {
    const dayIndex = Math.floor((t - start) / DAY_MS);
    if (dayIndex === 6 || dayIndex === 7) continue; // the controller was not running: a gap, counted as nothing
    if (dayIndex === 16 && containerId === 'c-first') {
      // The container was replaced (an image update): new id, counters from zero.
      containerId = 'c-second';
      agentStartedAt = new Date(t).toISOString();
      cpuNs = 0;
      tasks = 0;
    }
    const state = stateAt(t, dayIndex);
    const share = state.mode === 'contributing' ? 1.6 + random() * 0.4 : state.mode === 'stepping-aside' ? 0.2 : 0;
    cpuNs += share * (STEP_MS / 1000) * 1e9;
    tasks += state.mode === 'contributing' ? Math.floor(random() * 12) : 0;
    store.record({ atMs: t, cpuUsageNs: cpuNs, containerId, tasksCompletedTotal: tasks, agentStartedAt, ...state });
  }
  store.close();
  // What the window is served is what a restarted controller would read back from disk.
  const reloaded = new HistoryStore(dir);
  expect(reloaded.notice).toBeNull();
  return reloaded.document();
}

async function openHistory(service: ScriptedService, colorScheme: 'light' | 'dark' = 'light') {
  session = await openRenderer(service, { colorScheme, viewport: { width: 900, height: 1000 } });
  await session.page.getByTestId('tab-history').click();
  await expect.poll(() => session?.page.getByTestId('page-history').getAttribute('data-rendered')).toBeTruthy();
  return session;
}

/** Pixels a chart actually painted (alpha > 0): an empty canvas has none. */
async function paintedPixels(s: RendererSession, testId: string): Promise<{ painted: number; colours: number }> {
  return s.page.getByTestId(testId).evaluate((canvas) => {
    // The e2e project has no DOM types: the little of a canvas this needs, spelled out.
    const c = canvas as unknown as {
      width: number;
      height: number;
      getContext(
        kind: '2d',
      ): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
    };
    const data = c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ?? new Uint8ClampedArray();
    let painted = 0;
    const colours = new Set<number>();
    for (let i = 0; i < data.length; i += 4) {
      if ((data[i + 3] ?? 0) > 0) {
        painted++;
        colours.add(((data[i] ?? 0) << 16) | ((data[i + 1] ?? 0) << 8) | (data[i + 2] ?? 0));
      }
    }
    return { painted, colours: colours.size };
  });
}

describe('the history page', () => {
  it('draws 24 hours and 30 days of a real store as charts, with summaries, tables and labels', async () => {
    const { doc } = generatedHistory();
    expect(doc.hours.length).toBeGreaterThan(24 * 25);
    const service = new ScriptedService();
    service.history = doc;
    const s = await openHistory(service);
    expect(await s.page.getByTestId('page-history').getAttribute('data-rendered')).toBe('charts');
    expect(service.callsTo('history:get').length).toBeGreaterThanOrEqual(1);
    await expect.poll(() => s.page.getByTestId('history-empty').count()).toBe(0);

    for (const view of ['24h', '30d']) {
      for (const kind of ['cpu', 'time']) {
        const id = `chart-${view}-${kind}`;
        const canvas = s.page.getByTestId(id);
        expect(await canvas.isVisible()).toBe(true);
        const box = await canvas.boundingBox();
        expect(box?.width).toBeGreaterThan(300);
        expect(box?.height).toBeGreaterThan(150);
        const { painted, colours } = await paintedPixels(s, id);
        // Bars, axes and labels: a good share of the canvas is painted, in several colours (series + text).
        expect(painted).toBeGreaterThan(((box?.width ?? 0) * (box?.height ?? 0)) / 20);
        expect(colours).toBeGreaterThan(5);
        expect(await canvas.getAttribute('role')).toBe('img');
        expect(await canvas.getAttribute('aria-label')).toMatch(
          kind === 'cpu' ? /^CPU given and tasks completed/ : /^Time contributing/,
        );
      }
    }

    // The figures the charts draw are in the tables too (and the summary sentence says them in words).
    const totalTasks = doc.hours.reduce((sum, h) => sum + h.tasksCompleted, 0);
    const last30 = s.page.getByTestId('history-30d-table');
    expect(await last30.locator('tbody tr').count()).toBe(30);
    expect(await s.page.getByTestId('history-24h-table').locator('tbody tr').count()).toBe(24);
    const tableTasks = await last30
      .locator('tbody tr td:nth-child(3)')
      .allTextContents()
      .then((cells) => cells.reduce((sum, cell) => sum + Number(cell), 0));
    // The store keeps 31 days; the page shows the last 30 local days, so it may drop an hour or so at the start.
    expect(tableTasks).toBeLessThanOrEqual(totalTasks);
    expect(tableTasks).toBeGreaterThan(totalTasks * 0.9);
    const summary = await s.page.getByTestId('history-30d-summary').textContent();
    expect(summary).toMatch(
      /^\d+(\.\d)? CPU-hours given, [\d,]+ tasks completed; contributing \d+ h \d\d min \(\d+% of the time recorded\)/,
    );
    expect(summary).toContain(`${tableTasks.toLocaleString('en')} tasks completed`);
    // The pause reasons that occurred are named in the table.
    const pausedCells = (await last30.locator('tbody tr td:nth-child(6)').allTextContents()).join(' ');
    for (const reason of ['in use', 'on battery', 'switched off', 'outside schedule'])
      expect(pausedCells).toContain(reason);
    // The two days without a controller show as nothing at all.
    expect(await last30.locator('tbody tr', { hasText: /—\s*$/ }).count()).toBeGreaterThanOrEqual(1);

    await s.page.screenshot({ path: path.join(artifacts, 'history-window.png') });
    await s.page.getByTestId('page-history').screenshot({ path: path.join(artifacts, 'history-page.png') });
    await s.page.getByTestId('history-30d').screenshot({ path: path.join(artifacts, 'history-30d.png') });
    copyFileSync(path.join(artifacts, 'history-30d.png'), path.join(root, 'docs', 'history.png'));
  });

  it('reads well in dark mode too', async () => {
    const service = new ScriptedService();
    service.history = generatedHistory().doc;
    const s = await openHistory(service, 'dark');
    expect(await s.page.getByTestId('page-history').getAttribute('data-rendered')).toBe('charts');
    expect((await paintedPixels(s, 'chart-30d-cpu')).painted).toBeGreaterThan(1000);
    await s.page.getByTestId('history-24h').screenshot({ path: path.join(artifacts, 'history-24h-dark.png') });
  });

  it('an empty history shows a sentence, not empty axes', async () => {
    const service = new ScriptedService();
    const s = await openHistory(service);
    expect(await s.page.getByTestId('page-history').getAttribute('data-rendered')).toBe('empty');
    expect(await s.page.getByTestId('history-empty').textContent()).toMatch(/^Nothing recorded yet\./);
    expect(await s.page.locator('#page-history canvas').count()).toBe(0);
    await s.page.getByTestId('page-history').screenshot({ path: path.join(artifacts, 'history-empty.png') });
  });

  it('a failing history:get says why on the page, and the next visit loads again', async () => {
    const service = new ScriptedService();
    let fail = true;
    const history = generatedHistory().doc;
    service['history:get'] = async () => {
      if (fail) throw new Error('The history file could not be read.');
      return history;
    };
    const s = await openHistory(service);
    expect(await s.page.getByTestId('history-error').textContent()).toBe('The history file could not be read.');
    fail = false;
    await s.page.getByTestId('tab-status').click();
    await s.page.getByTestId('tab-history').click();
    await expect.poll(() => s.page.getByTestId('page-history').getAttribute('data-rendered')).toBe('charts');
    expect(await s.page.locator('#page-history canvas').count()).toBe(4);
  });
});
