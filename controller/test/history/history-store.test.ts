import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HISTORY_MAX_HOURS, HistoryDocument } from '@ray-agent/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HISTORY_FILE, type HistorySample, HistoryStore } from '../../src/history/history-store.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'ra-history-store-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const HOUR = 3_600_000;
const T0 = Date.parse('2026-12-02T10:00:00.000Z');
const file = () => path.join(dir, HISTORY_FILE);

function sample(atMs: number, overrides: Partial<HistorySample> = {}): HistorySample {
  return {
    atMs,
    cpuUsageNs: null,
    containerId: 'c1',
    tasksCompletedTotal: null,
    agentStartedAt: '2026-12-02T09:00:00.000Z',
    mode: 'contributing',
    reason: null,
    ...overrides,
  };
}

const hour = (store: HistoryStore, iso: string) => store.document().hours.find((h) => h.hourStart === iso);

describe('HistoryStore: attributing time, CPU and tasks to hours', () => {
  it('splits an interval across the hour boundary by time, CPU in proportion, tasks in the hour seen', () => {
    const store = new HistoryStore(dir);
    // 10:59:00 -> 11:01:00 contributing; the container used 60 CPU-seconds and 4 tasks finished meanwhile.
    store.record(sample(T0 + 59 * 60_000, { cpuUsageNs: 100e9, tasksCompletedTotal: 10 }));
    store.record(sample(T0 + 61 * 60_000, { cpuUsageNs: 160e9, tasksCompletedTotal: 14 }));
    const doc = store.document();
    expect(doc.hours.map((h) => h.hourStart)).toEqual(['2026-12-02T10:00:00.000Z', '2026-12-02T11:00:00.000Z']);
    expect(doc.hours[0]).toMatchObject({ contributingSeconds: 60, cpuSeconds: 30, tasksCompleted: 0 });
    expect(doc.hours[1]).toMatchObject({ contributingSeconds: 60, cpuSeconds: 30, tasksCompleted: 4 });
    expect(HistoryDocument.safeParse(doc).success).toBe(true);
  });

  it('the time between two samples counts in the mode of the first: contributing, stepped aside, paused by reason', () => {
    const store = new HistoryStore(dir);
    store.record(sample(T0, { mode: 'contributing' }));
    store.record(sample(T0 + 60_000, { mode: 'stepping-aside', reason: 'in-use' }));
    store.record(sample(T0 + 90_000, { mode: 'paused', reason: 'on-battery' }));
    store.record(sample(T0 + 150_000, { mode: 'draining', reason: 'outside-schedule' }));
    store.record(sample(T0 + 165_000, { mode: 'off', reason: null }));
    store.record(sample(T0 + 180_000, { mode: 'paused', reason: null }));
    store.record(sample(T0 + 200_000, { mode: 'contributing' }));
    expect(hour(store, '2026-12-02T10:00:00.000Z')).toEqual({
      hourStart: '2026-12-02T10:00:00.000Z',
      cpuSeconds: 0,
      tasksCompleted: 0,
      contributingSeconds: 60,
      steppedAsideSeconds: 30,
      // off without a reason is "off"; paused without one is the person's pause.
      pausedSeconds: { 'on-battery': 60, 'outside-schedule': 15, off: 15, paused: 20 },
    });
  });

  it('a long interval spanning several hours fills each hour it covers', () => {
    const store = new HistoryStore(dir);
    for (let t = T0 + 30 * 60_000; t <= T0 + 3 * HOUR + 30 * 60_000; t += 4 * 60_000) store.record(sample(t));
    const doc = store.document();
    expect(doc.hours.map((h) => h.contributingSeconds)).toEqual([1800, 3600, 3600, 1800]);
  });

  it('counter resets count from zero and never go negative: counter down, new container, new agent run', () => {
    const store = new HistoryStore(dir);
    const at = (minute: number) => T0 + minute * 60_000;
    store.record(sample(at(0), { cpuUsageNs: 500e9, tasksCompletedTotal: 50 }));
    store.record(sample(at(1), { cpuUsageNs: 510e9, tasksCompletedTotal: 52 })); // +10 s, +2
    store.record(sample(at(2), { cpuUsageNs: 3e9, tasksCompletedTotal: 1 })); // went down: +3 s, +1
    store.record(sample(at(3), { cpuUsageNs: 7e9, containerId: 'c2', tasksCompletedTotal: 4 })); // new container: +7, +4
    store.record(
      // Same container, new agent run (a restart): both counters start again.
      sample(at(4), {
        cpuUsageNs: 9e9,
        containerId: 'c2',
        agentStartedAt: '2026-12-02T10:03:30.000Z',
        tasksCompletedTotal: 2,
      }),
    );
    const h = hour(store, '2026-12-02T10:00:00.000Z');
    expect(h?.cpuSeconds).toBeCloseTo(10 + 3 + 7 + 9, 6);
    expect(h?.tasksCompleted).toBe(2 + 1 + 4 + 2);
  });

  it('unknown counters (null) count nothing and keep the baseline: no double count when they come back', () => {
    const store = new HistoryStore(dir);
    store.record(sample(T0, { cpuUsageNs: 100e9, tasksCompletedTotal: 5 }));
    store.record(
      sample(T0 + 60_000, { cpuUsageNs: null, tasksCompletedTotal: null, agentStartedAt: null, containerId: null }),
    );
    store.record(sample(T0 + 120_000, { cpuUsageNs: 130e9, tasksCompletedTotal: 8 }));
    const h = hour(store, '2026-12-02T10:00:00.000Z');
    expect(h?.cpuSeconds).toBeCloseTo(30, 6);
    expect(h?.tasksCompleted).toBe(3);
    expect(h?.contributingSeconds).toBe(120);
  });

  it('gaps count as nothing: a new store (controller restart) starts from its first sample, and so does a long silence', () => {
    const first = new HistoryStore(dir);
    first.record(sample(T0, { cpuUsageNs: 0, tasksCompletedTotal: 0 }));
    first.record(sample(T0 + 60_000, { cpuUsageNs: 60e9, tasksCompletedTotal: 6 }));
    first.close();
    // The controller was off for 20 minutes; the container went on and its counters moved.
    const second = new HistoryStore(dir);
    second.record(sample(T0 + 21 * 60_000, { cpuUsageNs: 1260e9, tasksCompletedTotal: 126 }));
    second.record(sample(T0 + 22 * 60_000, { cpuUsageNs: 1320e9, tasksCompletedTotal: 130 }));
    // The machine slept for 2 hours between two samples.
    second.record(sample(T0 + 142 * 60_000, { cpuUsageNs: 1330e9, tasksCompletedTotal: 131 }));
    second.record(sample(T0 + 143 * 60_000, { cpuUsageNs: 1335e9, tasksCompletedTotal: 133 }));
    const doc = second.document();
    expect(doc.hours).toHaveLength(2);
    expect(doc.hours[0]).toMatchObject({ contributingSeconds: 120, tasksCompleted: 10 });
    expect(doc.hours[0]?.cpuSeconds).toBeCloseTo(120, 6);
    expect(doc.hours[1]).toMatchObject({
      hourStart: '2026-12-02T12:00:00.000Z',
      contributingSeconds: 60,
      tasksCompleted: 2,
    });
    expect(doc.hours[1]?.cpuSeconds).toBeCloseTo(5, 6);
  });

  it('a clock that goes back counts nothing for that step', () => {
    const store = new HistoryStore(dir);
    store.record(sample(T0 + 120_000, { cpuUsageNs: 10e9 }));
    store.record(sample(T0 + 60_000, { cpuUsageNs: 20e9 }));
    store.record(sample(T0 + 120_000, { cpuUsageNs: 25e9 }));
    expect(hour(store, '2026-12-02T10:00:00.000Z')).toMatchObject({ contributingSeconds: 60, cpuSeconds: 5 });
  });

  it(`keeps at most HISTORY_MAX_HOURS (${HISTORY_MAX_HOURS}) hours, dropping the oldest, and they survive a reload`, () => {
    const store = new HistoryStore(dir);
    const hours = HISTORY_MAX_HOURS + 30;
    for (let i = 0; i < hours; i++) {
      store.record(sample(T0 + i * HOUR + 10_000));
      store.record(sample(T0 + i * HOUR + 20_000));
    }
    store.close();
    const doc = store.document();
    expect(doc.hours).toHaveLength(HISTORY_MAX_HOURS);
    expect(doc.hours[0]?.hourStart).toBe(new Date(T0 + 30 * HOUR).toISOString());
    expect(doc.hours.at(-1)?.hourStart).toBe(new Date(T0 + (hours - 1) * HOUR).toISOString());
    const reloaded = new HistoryStore(dir);
    expect(reloaded.notice).toBeNull();
    expect(reloaded.document()).toEqual(doc);
  });
});

describe('HistoryStore: persistence', () => {
  it('writes at most once a minute, at every hour change and on close', () => {
    const store = new HistoryStore(dir);
    const written = () => {
      try {
        return HistoryDocument.parse(JSON.parse(readFileSync(file(), 'utf8')));
      } catch {
        return null;
      }
    };
    const seconds = () => written()?.hours.reduce((sum, h) => sum + h.contributingSeconds, 0) ?? null;
    const base = T0 + 57 * 60_000;
    store.record(sample(base)); // nothing to write yet: no time counted
    expect(written()).toBeNull();
    store.record(sample(base + 15_000)); // first counted sample: written
    expect(seconds()).toBe(15);
    store.record(sample(base + 30_000));
    store.record(sample(base + 45_000));
    store.record(sample(base + 60_000));
    expect(seconds()).toBe(15); // within the minute: not written
    store.record(sample(base + 75_000)); // a minute after the last write
    expect(seconds()).toBe(75);
    store.record(sample(base + 90_000));
    expect(seconds()).toBe(75);
    store.record(sample(T0 + HOUR + 5_000)); // the next hour, 35 s after the last write: written at once
    expect(seconds()).toBe(185);
    store.record(sample(T0 + HOUR + 20_000));
    expect(seconds()).toBe(185);
    store.close();
    expect(seconds()).toBe(200);
    expect(statSync(file()).mode & 0o777).toBe(0o600);
  });

  it('a corrupt file is kept aside, a fresh history starts, and the notice says where the old file is', () => {
    writeFileSync(file(), '{"version":1,"hours":[{"hourStart":"2026-12-02T10:00:00.000Z","cpuSec');
    const store = new HistoryStore(dir);
    expect(store.document()).toEqual({ version: 1, hours: [] });
    const kept = readdirSync(dir).filter((name) => name.startsWith(`${HISTORY_FILE}.corrupt-`));
    expect(kept).toHaveLength(1);
    expect(store.notice).toContain(path.join(dir, kept[0] ?? ''));
    expect(store.notice).toMatch(/could not be read .*a new history was started/);
    expect(readFileSync(path.join(dir, kept[0] ?? ''), 'utf8')).toContain('"cpuSec');
  });

  it('a file that parses but breaks the schema is kept aside too, naming the field', () => {
    writeFileSync(
      file(),
      JSON.stringify({ version: 1, hours: [{ hourStart: 'yesterday', cpuSeconds: -1, tasksCompleted: 0 }] }),
    );
    const store = new HistoryStore(dir);
    expect(store.notice).toMatch(/hours\.0\.hourStart/);
    expect(store.document().hours).toEqual([]);
    store.record(sample(T0));
    store.record(sample(T0 + 1000));
    store.close();
    expect(new HistoryStore(dir).notice).toBeNull();
  });

  it('a writer killed with SIGKILL at any instant leaves the old or the new file, never a torn one (20 real kills)', {
    timeout: 180_000,
  }, async () => {
    const moduleUrl = new URL('../../src/history/history-store.ts', import.meta.url).href;
    const script = path.join(dir, 'writer.mjs');
    // Each step is a minute and a second later, so every record() writes the whole (up to 744-hour) document.
    writeFileSync(
      script,
      `import { HistoryStore } from ${JSON.stringify(moduleUrl)};
const store = new HistoryStore(process.argv[2]);
const hours = store.document().hours;
let t = hours.length ? Date.parse(hours.at(-1).hourStart) + 3600000 : ${T0};
let cpu = 0;
process.stdout.write('ready\\n');
for (;;) {
  t += 61000;
  cpu += 61e9;
  store.record({ atMs: t, cpuUsageNs: cpu, containerId: 'c', tasksCompletedTotal: 0, agentStartedAt: null, mode: 'contributing', reason: null });
}
`,
    );
    const data = path.join(dir, 'data');
    const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
    let previous = 0;
    for (let kill = 0; kill < 20; kill++) {
      const child = spawn(process.execPath, ['--import', 'tsx', script, data], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`writer exited ${code} before writing: ${stderr}`)));
      });
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 150));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;

      const store = new HistoryStore(data);
      expect(store.notice).toBeNull();
      const total = store.document().hours.reduce((sum, h) => sum + h.contributingSeconds, 0);
      // The store only moves forward: each file seen is at least as full as the last one.
      expect(total).toBeGreaterThanOrEqual(previous);
      previous = total;
      expect(readdirSync(data).filter((name) => name.includes('.tmp-'))).toEqual([]);
    }
    // The writers really wrote: many hours, each a whole document.
    expect(previous).toBeGreaterThan(20 * 61);
  });
});
