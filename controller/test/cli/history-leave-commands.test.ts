import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { RUN_PID_FILE } from '../../src/cli/run-pid.js';
import { HistoryStore } from '../../src/history/history-store.js';
import { cliIn, tempSettingsDir } from './run-cli.js';

let dir: string;
let remove: () => void;
let cli: ReturnType<typeof cliIn>;

beforeEach(() => {
  ({ dir, remove } = tempSettingsDir());
  cli = cliIn(dir);
});
afterEach(() => remove());

describe('ray-agent history', () => {
  test('prints the store of the settings folder as a table: an hour of contributing with its CPU time', async () => {
    const store = new HistoryStore(dir);
    const now = Date.now();
    const sample = { containerId: 'c1', agentStartedAt: 'a1', mode: 'contributing' as const, reason: null };
    // Two samples 4 minutes apart inside the last hour: 240 s contributing, 120 CPU-seconds, 3 tasks.
    store.record({ ...sample, atMs: now - 5 * 60_000, cpuUsageNs: 0, tasksCompletedTotal: 0 });
    store.record({ ...sample, atMs: now - 60_000, cpuUsageNs: 120e9, tasksCompletedTotal: 3 });
    store.close();

    const hours = await cli('history');
    expect(hours.code, hours.stderr).toBe(0);
    const total = hours.stdout.split('\n').find((line) => /^total/i.test(line.trim()));
    expect(total, hours.stdout).toBeDefined();
    expect(total).toMatch(/\b3\b/);
    expect(total).toMatch(/2\.0 CPU-min/);

    const days = await cli('history', '--days');
    expect(days.code, days.stderr).toBe(0);
    expect(days.stdout.split('\n').length).toBeGreaterThan(30);
  });

  test('an empty history says so', async () => {
    const got = await cli('history');
    expect(got.code).toBe(0);
    expect(got.stdout.trim().length).toBeGreaterThan(0);
    expect(got.stdout).not.toMatch(/NaN|undefined/);
  });
});

describe('ray-agent leave', () => {
  test('refuses while `ray-agent run` manages the agent, naming its pid, and removes nothing', async () => {
    // A live process stands for the run (this test's own pid would count as "us").
    const run = spawn('sleep', ['60']);
    try {
      writeFileSync(path.join(dir, RUN_PID_FILE), `${run.pid}\n`);
      await cli('config', 'set', 'cpus', '3');
      const got = await cli('leave');
      expect(got.code).toBe(1);
      expect(got.stderr).toContain(`\`ray-agent run\` (pid ${run.pid})`);
      expect(existsSync(path.join(dir, 'config.json'))).toBe(true);
    } finally {
      run.kill();
    }
  });
});
