import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cgroupReader } from '../src/limits/cgroup.js';
import { type ContainerFacts, effectiveLimits, tooLittleMemory } from '../src/limits/effective-limits.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const HOST = { hostCpus: 8, hostMemoryBytes: 24 * GiB };
const NOTHING = { cpus: undefined, memoryBytes: undefined };

function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/cgroup/${name}`, import.meta.url));
}

/** What main.ts reads: a cgroup tree, and the host's figures. */
function facts(tree: string, host = HOST): ContainerFacts {
  const cgroup = cgroupReader(fixture(tree));
  return { cgroupCpus: cgroup.cpuLimit(), cgroupMemoryBytes: cgroup.memoryLimit(), ...host };
}

describe('effectiveLimits: the variables never outrank the container', () => {
  for (const tree of ['v1-docker-cpus1.5-memory3g', 'v2-docker-cpus1.5-memory3g']) {
    it(`${tree}: without variables, the cgroup's limits`, () => {
      const limits = effectiveLimits(NOTHING, facts(tree));
      expect(limits).toMatchObject({ cpus: 1.5, memoryBytes: 3 * GiB, source: 'cgroup', warnings: [] });
    });

    it(`${tree}: CPU_LIMIT and MEMORY_LIMIT above the cgroup give the cgroup's, with a warning naming each`, () => {
      const limits = effectiveLimits({ cpus: 4, memoryBytes: 8 * GiB }, facts(tree));
      expect(limits.cpus).toBe(1.5);
      expect(limits.memoryBytes).toBe(3 * GiB);
      expect(limits.cpuSource).toBe('cgroup');
      expect(limits.memorySource).toBe('cgroup');
      expect(limits.source).toBe('cgroup');
      expect(limits.warnings).toEqual([
        "CPU_LIMIT asks for 4 CPUs but the container has 1.5 CPUs, so the limit used is 1.5 CPUs; lower CPU_LIMIT or raise the container's --cpus",
        "MEMORY_LIMIT asks for 8 GiB but the container has 3 GiB, so the limit used is 3 GiB; lower MEMORY_LIMIT or raise the container's --memory",
      ]);
    });

    it(`${tree}: variables below the cgroup are taken as they are`, () => {
      const limits = effectiveLimits({ cpus: 1, memoryBytes: 2 * GiB }, facts(tree));
      expect(limits).toMatchObject({ cpus: 1, memoryBytes: 2 * GiB, source: 'env', warnings: [] });
      const one = effectiveLimits({ cpus: 1.5, memoryBytes: undefined }, facts(tree));
      expect(one).toMatchObject({ cpus: 1.5, memoryBytes: 3 * GiB, cpuSource: 'env', memorySource: 'cgroup' });
      expect(one.source).toBe('env');
      expect(one.warnings).toEqual([]);
    });
  }

  for (const tree of ['v1-docker-unlimited', 'v2-docker-unlimited']) {
    it(`${tree}: no cgroup limit means the host's, and a variable above the host is cut to it`, () => {
      expect(effectiveLimits(NOTHING, facts(tree))).toMatchObject({
        cpus: 8,
        memoryBytes: 24 * GiB,
        source: 'host',
        warnings: [],
      });
      const limits = effectiveLimits({ cpus: 16, memoryBytes: 64 * GiB }, facts(tree));
      expect(limits).toMatchObject({ cpus: 8, memoryBytes: 24 * GiB, source: 'host' });
      expect(limits.warnings).toEqual([
        'CPU_LIMIT asks for 16 CPUs but this machine has 8 CPUs, so the limit used is 8 CPUs; lower CPU_LIMIT',
        'MEMORY_LIMIT asks for 64 GiB but this machine has 24 GiB, so the limit used is 24 GiB; lower MEMORY_LIMIT',
      ]);
    });
  }

  it("v1: a parent's smaller limit (hierarchical_memory_limit) is the container's", () => {
    expect(effectiveLimits(NOTHING, facts('v1-parent-limit-memory2g'))).toMatchObject({
      memoryBytes: 2 * GiB,
      source: 'cgroup',
    });
  });

  it("a cgroup memory limit above the host's memory is clamped to the host's, with a warning", () => {
    const small = { hostCpus: 1, hostMemoryBytes: 2 * GiB };
    for (const tree of ['v1-docker-cpus1.5-memory3g', 'v2-docker-cpus1.5-memory3g']) {
      const limits = effectiveLimits(NOTHING, facts(tree, small));
      expect(limits).toMatchObject({ cpus: 1, memoryBytes: 2 * GiB, source: 'host' });
      expect(limits.warnings).toEqual([
        "the container's CPU limit (1.5 CPUs) is more than this machine has (1 CPU), so the limit used is 1 CPU",
        "the container's memory limit (3 GiB) is more than this machine has (2 GiB), so the limit used is 2 GiB",
      ]);
      // And a variable between the two is still cut to the host.
      expect(effectiveLimits({ cpus: 1.2, memoryBytes: 2.5 * GiB }, facts(tree, small))).toMatchObject({
        cpus: 1,
        memoryBytes: 2 * GiB,
      });
    }
  });

  it('a quota that is a hair off a whole number is not cut and not warned about', () => {
    const limits = effectiveLimits(
      { cpus: 2, memoryBytes: undefined },
      { cgroupCpus: 2 - 1e-12, cgroupMemoryBytes: undefined, ...HOST },
    );
    expect(limits.cpus).toBe(2);
    expect(limits.warnings).toEqual([]);
  });
});

describe('tooLittleMemory', () => {
  it('refuses a container or machine below the minimum, naming the flag and a good value', () => {
    const cgroup = effectiveLimits(NOTHING, { cgroupCpus: 1, cgroupMemoryBytes: 256 * MiB, ...HOST });
    expect(tooLittleMemory(cgroup)).toBe(
      "--memory: the container's memory limit is 256 MiB, below the 512 MiB a Ray node needs (e.g. docker run --memory=2g)",
    );
    const host = effectiveLimits(NOTHING, {
      cgroupCpus: undefined,
      cgroupMemoryBytes: undefined,
      hostCpus: 1,
      hostMemoryBytes: 400 * MiB,
    });
    expect(tooLittleMemory(host)).toMatch(/^this machine has only 400 MiB of memory, below the 512 MiB/);
    expect(tooLittleMemory(effectiveLimits(NOTHING, facts('v1-docker-cpus1.5-memory3g')))).toBeUndefined();
    expect(
      tooLittleMemory(effectiveLimits(NOTHING, { cgroupCpus: 1, cgroupMemoryBytes: 512 * MiB, ...HOST })),
    ).toBeUndefined();
  });
});
