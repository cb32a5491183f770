import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIN_MEMORY_BYTES, rayCpusFor } from '@ray-agent/protocol';
import { describe, expect, it } from 'vitest';
import { liveLimitsPath, readLiveLimits, startupRequest, writeLiveLimits } from '../src/limits/live-limits.js';
import { planLiveLimits } from '../src/limits/live-resize.js';
import { tempDir } from './helpers.js';

const GiB = 1024 ** 3;
const offer = { cpus: 2, memoryBytes: 4 * GiB, throttleCpus: 0.5, updatedAt: '2026-12-02T04:00:00.000Z' };

describe('LIVE_LIMITS_FILE', () => {
  it('round-trips through the atomic writer as a 0600 file, and reads as none when absent', () => {
    const path = liveLimitsPath(tempDir('agent-live-'));
    expect(path.endsWith('/limits.json')).toBe(true);
    expect(readLiveLimits(path)).toEqual({ kind: 'none' });
    writeLiveLimits(path, offer);
    expect(readLiveLimits(path)).toEqual({ kind: 'ok', limits: offer });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(offer);
  });

  it('an invalid file is ignored with a warning naming the file and the field', () => {
    const dir = tempDir('agent-live-bad-');
    const path = join(dir, 'limits.json');
    writeFileSync(path, '{"cpus":');
    const notJson = readLiveLimits(path);
    expect(notJson.kind).toBe('invalid');
    expect(notJson.kind === 'invalid' && notJson.warning).toMatch(/limits\.json is not JSON; it is ignored/);
    writeFileSync(path, JSON.stringify({ ...offer, cpus: -1 }));
    const bad = readLiveLimits(path);
    expect(bad.kind === 'invalid' && bad.warning).toMatch(/limits\.json: cpus: .*ignored/);
  });
});

describe('startupRequest', () => {
  const env = { cpus: 4, memoryBytes: 8 * GiB };

  it('without a saved offer, the environment and the cgroup decide', () => {
    expect(startupRequest(env, undefined, 1.5)).toEqual({ request: env, cgroupCpus: 1.5 });
  });

  it('the saved offer outranks CPU_LIMIT/MEMORY_LIMIT', () => {
    const live = { ...offer, throttleCpus: null };
    expect(startupRequest(env, live, 2)).toEqual({ request: { cpus: 2, memoryBytes: 4 * GiB }, cgroupCpus: 2 });
  });

  it('a CPU quota equal to the saved throttle is not the limit: Ray gets the whole offer', () => {
    expect(startupRequest(env, offer, 0.5)).toEqual({
      request: { cpus: 2, memoryBytes: 4 * GiB },
      cgroupCpus: undefined,
    });
    // The kernel's quota is only approximately the throttle (quota/period).
    expect(startupRequest(env, offer, 0.49999).cgroupCpus).toBeUndefined();
    // Another quota is a real limit and still caps Ray.
    expect(startupRequest(env, offer, 1).cgroupCpus).toBe(1);
  });
});

describe('planLiveLimits', () => {
  const facts = {
    hostCpus: 8,
    hostMemoryBytes: 16 * GiB,
    cgroupMemoryBytes: 4 * GiB,
    shmBytes: 2 * GiB,
    tmpFreeBytes: 2 * GiB,
    runningObjectStoreBytes: 0,
  };

  it('sizes Ray as at start: whole CPUs, the memory plan; a throttle does not change Ray', () => {
    const plan = planLiveLimits({ cpus: 2.5, memoryBytes: 4 * GiB, throttleCpus: null }, facts);
    const throttled = planLiveLimits({ cpus: 2.5, memoryBytes: 4 * GiB, throttleCpus: 0.25 }, facts);
    expect(plan.kind === 'ok' && plan.rayCpus).toBe(rayCpusFor(2.5));
    expect(plan.kind === 'ok' && plan.rayCpus).toBe(2);
    expect(throttled).toEqual(plan);
  });

  it('never gives Ray more memory than the kernel allows now, and says what to raise', () => {
    const plan = planLiveLimits({ cpus: 2, memoryBytes: 8 * GiB, throttleCpus: null }, facts);
    const within = planLiveLimits({ cpus: 2, memoryBytes: 4 * GiB, throttleCpus: null }, facts);
    expect(plan.kind === 'ok' && within.kind === 'ok' && plan.rayMemoryBytes === within.rayMemoryBytes).toBe(true);
    expect(plan.kind === 'ok' && plan.warnings.join(' ')).toMatch(/docker update --memory/);
  });

  it('a running object store larger than the new plan comes out of Ray memory', () => {
    const base = planLiveLimits({ cpus: 2, memoryBytes: 2 * GiB, throttleCpus: null }, facts);
    const big = planLiveLimits(
      { cpus: 2, memoryBytes: 2 * GiB, throttleCpus: null },
      { ...facts, runningObjectStoreBytes: 1 * GiB },
    );
    if (base.kind !== 'ok' || big.kind !== 'ok') throw new Error('refused');
    expect(big.rayMemoryBytes).toBe(base.rayMemoryBytes - (GiB - base.resources.objectStoreBytes));
  });

  it('refuses memory below the minimum and a throttle above the offer, naming the field', () => {
    const small = planLiveLimits({ cpus: 1, memoryBytes: MIN_MEMORY_BYTES - 1, throttleCpus: null }, facts);
    expect(small.kind === 'refused' && small.message).toMatch(/^memoryBytes: .*e\.g\./);
    const over = planLiveLimits({ cpus: 1, memoryBytes: 2 * GiB, throttleCpus: 2 }, facts);
    expect(over.kind === 'refused' && over.message).toMatch(/^throttleCpus: /);
  });
});
