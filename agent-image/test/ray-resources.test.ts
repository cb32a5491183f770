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
    const r = rayResources({ cpus, memoryBytes, source: 'env', shmBytes });
    expect(r.plan.reserveBytes).toBeGreaterThanOrEqual(Math.min(256 * MiB, memoryBytes / 4));
    expect(r.plan.reserveBytes + r.objectStoreBytes + r.memoryBytes).toBeLessThanOrEqual(memoryBytes);
    expect(r.objectStoreBytes).toBeGreaterThanOrEqual(MIN_OBJECT_STORE);
    expect(MIN_OBJECT_STORE).toBe(75 * MiB);
    expect(r.memoryBytes).toBeGreaterThan(0);
    expect(Number.isInteger(r.objectStoreBytes)).toBe(true);
    expect(Number.isInteger(r.memoryBytes)).toBe(true);
    expect(r.numCpus).toBe(Math.max(1, Math.floor(cpus)));
    expect(r.numCpus).toBeLessThanOrEqual(Math.max(1, cpus));
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

describe('rayResources when /dev/shm cannot hold even the smallest store', () => {
  it('plans the store in /tmp (as Ray puts it there), inside the memory limit, and says so', () => {
    for (const memoryBytes of MEMORY) {
      const r = rayResources({ cpus: 2, memoryBytes, source: 'cgroup', shmBytes: 64 * MiB, tmpFreeBytes: 100 * GiB });
      expect(r.plan.objectStoreIn).toBe('tmp');
      expect(r.plan.reserveBytes + r.objectStoreBytes + r.memoryBytes).toBeLessThanOrEqual(memoryBytes);
      expect(r.warnings).toHaveLength(1);
      expect(r.warnings[0]).toMatch(
        /^\/dev\/shm is only 64 MiB, too small for Ray's object store, so Ray keeps .* in \/tmp instead, .*counts against the memory limit.*; run the container with --shm-size=\d+m$/,
      );
    }
  });

  it("cuts the store to half of /tmp's free space, where Ray's logs and sessions also live", () => {
    const r = rayResources({
      cpus: 2,
      memoryBytes: 8 * GiB,
      source: 'cgroup',
      shmBytes: 64 * MiB,
      tmpFreeBytes: 2 * GiB,
    });
    expect(r.objectStoreBytes).toBe(GiB);
    expect(r.plan.cut).toBe('tmp_space');
    expect(r.memoryBytes).toBe(8 * GiB - r.plan.reserveBytes - GiB);
    expect(r.warnings[0]).toContain('cut to 1 GiB (half of the 2 GiB free in /tmp)');
    expect(r.warnings[0]).toMatch(/--shm-size=\d+m$/);
  });

  it('stays below the 10 GB Ray refuses outside /dev/shm (ray start would fail)', () => {
    const r = rayResources({
      cpus: 8,
      memoryBytes: 64 * GiB,
      source: 'cgroup',
      shmBytes: 64 * MiB,
      tmpFreeBytes: undefined,
    });
    expect(r.objectStoreBytes).toBe(10 ** 10);
    expect(r.warnings[0]).toContain("Ray's 10 GB ceiling for a store outside /dev/shm");
    // The memory the store did not take goes to tasks, still inside the limit.
    expect(r.plan.reserveBytes + r.objectStoreBytes + r.memoryBytes).toBe(64 * GiB);
  });

  it('the --shm-size it suggests puts the full store back in /dev/shm', () => {
    for (const memoryBytes of MEMORY) {
      const small = rayResources({ cpus: 2, memoryBytes, source: 'cgroup', shmBytes: 64 * MiB, tmpFreeBytes: GiB });
      const suggested = Number(/--shm-size=(\d+)m/.exec(small.warnings[0] ?? '')?.[1]) * MiB;
      const fixed = rayResources({ cpus: 2, memoryBytes, source: 'cgroup', shmBytes: suggested, tmpFreeBytes: GiB });
      expect(fixed.plan.objectStoreIn).toBe('shm');
      expect(fixed.plan.cut).toBe('full');
      expect(fixed.warnings).toEqual([]);
    }
  });
});
