import { describe, expect, it } from 'vitest';
import { MIN_OBJECT_STORE, rayResources } from '../src/limits/ray-resources.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

const MEMORY = [512 * MiB, 768 * MiB, GiB, 1.5 * GiB, 2 * GiB, 3 * GiB, 4 * GiB, 8 * GiB, 16 * GiB, 32 * GiB, 64 * GiB];
const CPUS = [0.5, 1, 1.5, 2, 3.7, 4, 8, 16];
const SHM: Array<[string, (memory: number) => number | undefined]> = [
  ['no /dev/shm', () => undefined],
  ['64 MiB /dev/shm (docker default)', () => 64 * MiB],
  ['256 MiB /dev/shm', () => 256 * MiB],
  ['ample /dev/shm', (memory) => memory],
];

const ROW_INPUTS = MEMORY.flatMap((memoryBytes) =>
  CPUS.flatMap((cpus) => SHM.map(([shmName, shm]) => ({ memoryBytes, cpus, shmName, shmBytes: shm(memoryBytes) }))),
);

describe('rayResources', () => {
  it.each(ROW_INPUTS)('fits $memoryBytes bytes, $cpus CPUs, $shmName', ({ memoryBytes, cpus, shmBytes }) => {
    const reserve = Math.min(768 * MiB, Math.max(256 * MiB, Math.floor(memoryBytes * 0.25)));
    const r = rayResources({ cpus, memoryBytes, source: 'env', shmBytes });
    if (memoryBytes >= GiB) expect(reserve + r.objectStoreBytes + r.memoryBytes).toBeLessThanOrEqual(memoryBytes);
    expect(r.objectStoreBytes).toBeGreaterThanOrEqual(MIN_OBJECT_STORE);
    expect(MIN_OBJECT_STORE).toBe(75 * MiB);
    expect(r.memoryBytes).toBeGreaterThan(0);
    expect(Number.isInteger(r.objectStoreBytes)).toBe(true);
    expect(Number.isInteger(r.memoryBytes)).toBe(true);
    expect(r.numCpus).toBe(Math.max(1, Math.floor(cpus)));
    expect(Number.isInteger(r.numCpus)).toBe(true);
  });

  it('does not let the object store outgrow /dev/shm when /dev/shm can hold the minimum', () => {
    for (const memoryBytes of MEMORY) {
      const r = rayResources({ cpus: 2, memoryBytes, source: 'env', shmBytes: 256 * MiB });
      expect(r.objectStoreBytes).toBeLessThanOrEqual(256 * MiB);
    }
  });

  it('warns about a small /dev/shm and names the docker flag that fixes it', () => {
    for (const shmBytes of [64 * MiB, 256 * MiB]) {
      const r = rayResources({ cpus: 2, memoryBytes: 8 * GiB, source: 'env', shmBytes });
      expect(r.warnings).toHaveLength(1);
      expect(r.warnings[0]).toContain('--shm-size=');
      expect(r.warnings[0]).toContain('/dev/shm');
    }
  });

  it('suggests a --shm-size that really removes the warning', () => {
    for (const memoryBytes of [GiB, 4 * GiB, 8 * GiB, 64 * GiB]) {
      const small = rayResources({ cpus: 2, memoryBytes, source: 'env', shmBytes: 64 * MiB });
      const suggested = /--shm-size=(\d+)m/.exec(small.warnings[0] ?? '');
      expect(suggested).not.toBeNull();
      const shmBytes = Number(suggested?.[1]) * MiB;
      const fixed = rayResources({ cpus: 2, memoryBytes, source: 'env', shmBytes });
      expect(fixed.warnings).toEqual([]);
      expect(fixed.objectStoreBytes).toBe(
        rayResources({ cpus: 2, memoryBytes, source: 'env', shmBytes: undefined }).objectStoreBytes,
      );
    }
  });

  it('gives no warning with an ample /dev/shm and at least one CPU', () => {
    for (const memoryBytes of MEMORY)
      for (const cpus of CPUS.filter((c) => c >= 1)) {
        expect(rayResources({ cpus, memoryBytes, source: 'cgroup', shmBytes: memoryBytes }).warnings).toEqual([]);
        expect(rayResources({ cpus, memoryBytes, source: 'host', shmBytes: undefined }).warnings).toEqual([]);
      }
  });

  it('warns about a CPU limit below one CPU, and about nothing else when /dev/shm is ample', () => {
    const r = rayResources({ cpus: 0.5, memoryBytes: 4 * GiB, source: 'env', shmBytes: 4 * GiB });
    expect(r.numCpus).toBe(1);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/below one CPU/);
    expect(r.warnings[0]).not.toContain('--shm-size=');
  });
});
