import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HistoryDocument } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveDockerEndpointFromProcess } from '../../src/engine/docker-endpoint.js';
import { createDockerode } from '../../src/engine/docker-engine.js';
import { containerCpuUsage, HistoryLoop } from '../../src/history/history-loop.js';
import { HISTORY_FILE, type HistorySample, HistoryStore } from '../../src/history/history-store.js';
import { docker, removeByPrefix, runPrefix } from '../support/docker-cli.js';

const prefix = runPrefix('ra-history');
let dockerode: Dockerode;
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ra-history-loop-'));
  dirs.push(dir);
  return dir;
};

beforeAll(() => {
  dockerode = createDockerode(resolveDockerEndpointFromProcess());
});
afterAll(async () => {
  await removeByPrefix(prefix);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const idle = (): Omit<HistorySample, 'atMs'> => ({
  cpuUsageNs: null,
  containerId: null,
  tasksCompletedTotal: null,
  agentStartedAt: null,
  mode: 'contributing',
  reason: null,
});

describe('containerCpuUsage against the real Docker Engine', () => {
  it('reads a running container cgroup CPU counter, which grows while it burns CPU; null when stopped or missing', {
    timeout: 120_000,
  }, async () => {
    const name = `${prefix}-burn`;
    // Half a CPU, so the burner does not crowd other tests on a 2-core machine.
    const id = await docker([
      'run',
      '-d',
      '--name',
      name,
      '--cpus=0.5',
      'debian:bookworm-slim',
      'sh',
      '-c',
      'while :; do :; done',
    ]);
    const first = await containerCpuUsage(dockerode, name);
    expect(first?.id).toBe(id);
    expect(first?.usageNs).toBeGreaterThanOrEqual(0);
    // The counter must move by a clear amount; a loaded machine may give the burner less, so wait for it.
    let later = first;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && (later?.usageNs ?? 0) - (first?.usageNs ?? 0) < 0.2e9) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      later = await containerCpuUsage(dockerode, name);
    }
    expect((later?.usageNs ?? 0) - (first?.usageNs ?? 0)).toBeGreaterThanOrEqual(0.2e9);
    expect(later?.id).toBe(id);

    await docker(['stop', '-t', '0', name]);
    expect(await containerCpuUsage(dockerode, name)).toBeNull();
    await docker(['rm', '-f', name]);
    expect(await containerCpuUsage(dockerode, name)).toBeNull();
  });
});

describe('HistoryLoop', () => {
  it('samples a real burning container into the store: CPU seconds and contributing time, flushed on stop', {
    timeout: 120_000,
  }, async () => {
    const name = `${prefix}-loop`;
    await docker([
      'run',
      '-d',
      '--name',
      name,
      '--cpus=0.5',
      'debian:bookworm-slim',
      'sh',
      '-c',
      'while :; do :; done',
    ]);
    const dir = tempDir();
    const store = new HistoryStore(dir);
    let samples = 0;
    const loop = new HistoryLoop({
      store,
      intervalMs: 200,
      sample: async () => {
        const cpu = await containerCpuUsage(dockerode, name);
        samples++;
        return { ...idle(), cpuUsageNs: cpu?.usageNs ?? null, containerId: cpu?.id ?? null };
      },
    });
    const started = Date.now();
    loop.start();
    const cpuSeconds = () => store.document().hours.reduce((sum, h) => sum + h.cpuSeconds, 0);
    while (Date.now() - started < 60_000 && (samples < 5 || cpuSeconds() < 0.3)) {
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await loop.stop();
    const elapsed = (Date.now() - started) / 1000;
    const onDisk = HistoryDocument.parse(JSON.parse(readFileSync(path.join(dir, HISTORY_FILE), 'utf8')));
    // stop() flushed: the file holds everything counted.
    expect(onDisk).toEqual(store.document());
    const cpu = onDisk.hours.reduce((sum, h) => sum + h.cpuSeconds, 0);
    const contributing = onDisk.hours.reduce((sum, h) => sum + h.contributingSeconds, 0);
    expect(cpu).toBeGreaterThanOrEqual(0.3);
    // Half a CPU at most, over at most the time the loop ran (plus the counter's read slack).
    expect(cpu).toBeLessThanOrEqual(elapsed * 0.5 + 1);
    expect(contributing).toBeGreaterThan(0);
    expect(contributing).toBeLessThanOrEqual(elapsed + 1);
  });

  it('never overlaps samples, skips a failing one, and stop() waits for the one in flight', async () => {
    const store = new HistoryStore(tempDir());
    let clock = Date.parse('2026-12-02T10:00:00.000Z');
    let inFlight = 0;
    let maxInFlight = 0;
    let calls = 0;
    const errors: unknown[] = [];
    let releaseSlow: (() => void) | null = null;
    const loop = new HistoryLoop({
      store,
      intervalMs: 1,
      now: () => clock,
      onError: (error) => errors.push(error),
      sample: async () => {
        calls++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          clock += 10_000;
          if (calls === 2) throw new Error('docker stats failed');
          if (calls === 5) await new Promise<void>((resolve) => (releaseSlow = resolve));
          else await new Promise((resolve) => setTimeout(resolve, 5));
          return idle();
        } finally {
          inFlight--;
        }
      },
    });
    loop.start();
    while (calls < 5) await new Promise((resolve) => setTimeout(resolve, 5));
    const stopped = loop.stop();
    let done = false;
    void stopped.then(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(done).toBe(false); // still waiting for sample 5
    (releaseSlow as (() => void) | null)?.();
    await stopped;
    expect(maxInFlight).toBe(1);
    expect(calls).toBe(5);
    expect(errors.map(String)).toEqual(['Error: docker stats failed']);
    // Samples 1, 3, 4 and 5 recorded (10 s apart on the clock, one skipped): 1→3 is 20 s, then 10 s and 10 s.
    expect(store.document().hours[0]?.contributingSeconds).toBe(40);
  });
});
