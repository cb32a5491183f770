import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cgroupReader } from '../src/limits/cgroup.js';
import { tempDir } from './helpers.js';

/** Writes a fake cgroup tree: each key is a path under the root, each value the file's content as the kernel writes it. */
function tree(files: Record<string, string>): string {
  const root = tempDir('agent-cgroup-');
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

const V2_BASE = { 'cgroup.controllers': 'cpuset cpu io memory hugetlb pids rdma misc\n' };

describe('cgroupReader, cgroup v2 layout', () => {
  it('reads the CPU limit from cpu.max', () => {
    expect(cgroupReader(tree({ ...V2_BASE, 'cpu.max': '150000 100000\n' })).cpuLimit()).toBe(1.5);
    expect(cgroupReader(tree({ ...V2_BASE, 'cpu.max': '200000 50000\n' })).cpuLimit()).toBe(4);
    expect(cgroupReader(tree({ ...V2_BASE, 'cpu.max': 'max 100000\n' })).cpuLimit()).toBeUndefined();
    expect(cgroupReader(tree(V2_BASE)).cpuLimit()).toBeUndefined();
  });

  it('reads the memory limit from memory.max', () => {
    expect(cgroupReader(tree({ ...V2_BASE, 'memory.max': '4294967296\n' })).memoryLimit()).toBe(4 * 1024 ** 3);
    expect(cgroupReader(tree({ ...V2_BASE, 'memory.max': 'max\n' })).memoryLimit()).toBeUndefined();
    expect(cgroupReader(tree(V2_BASE)).memoryLimit()).toBeUndefined();
  });

  it('counts memory in use without the inactive file cache', () => {
    const stat = [
      'anon 52428800',
      'file 104857600',
      'inactive_anon 1024',
      'active_file 4096',
      'inactive_file 30000000',
      '',
    ];
    const reader = cgroupReader(tree({ ...V2_BASE, 'memory.current': '100000000\n', 'memory.stat': stat.join('\n') }));
    expect(reader.memoryUsage()).toBe(70_000_000);
  });

  it('never reports negative memory use, and nothing without memory.current', () => {
    const reader = cgroupReader(
      tree({ ...V2_BASE, 'memory.current': '1000\n', 'memory.stat': 'inactive_file 5000\n' }),
    );
    expect(reader.memoryUsage()).toBe(0);
    expect(cgroupReader(tree(V2_BASE)).memoryUsage()).toBeUndefined();
    expect(cgroupReader(tree({ ...V2_BASE, 'memory.current': '4096\n' })).memoryUsage()).toBe(4096);
  });

  it('reads cumulative CPU time from cpu.stat usage_usec, in nanoseconds', () => {
    const stat = 'usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n';
    expect(cgroupReader(tree({ ...V2_BASE, 'cpu.stat': stat })).cpuUsageNanos()).toBe(1_234_567_000);
    expect(cgroupReader(tree(V2_BASE)).cpuUsageNanos()).toBeUndefined();
  });
});

describe('cgroupReader, cgroup v1 layout', () => {
  it('reads the CPU limit from cpu/cpu.cfs_quota_us and cpu.cfs_period_us', () => {
    const limited = { 'cpu/cpu.cfs_quota_us': '200000\n', 'cpu/cpu.cfs_period_us': '100000\n' };
    expect(cgroupReader(tree(limited)).cpuLimit()).toBe(2);
    const unlimited = { 'cpu/cpu.cfs_quota_us': '-1\n', 'cpu/cpu.cfs_period_us': '100000\n' };
    expect(cgroupReader(tree(unlimited)).cpuLimit()).toBeUndefined();
  });

  it('reads the combined cpu,cpuacct controller too', () => {
    const files = { 'cpu,cpuacct/cpu.cfs_quota_us': '50000\n', 'cpu,cpuacct/cpu.cfs_period_us': '100000\n' };
    expect(cgroupReader(tree(files)).cpuLimit()).toBe(0.5);
    expect(cgroupReader(tree({ 'cpu,cpuacct/cpuacct.usage': '987654321\n' })).cpuUsageNanos()).toBe(987_654_321);
  });

  it('treats the huge "no limit" value as no memory limit', () => {
    const huge = { 'memory/memory.limit_in_bytes': '9223372036854771712\n' };
    expect(cgroupReader(tree(huge)).memoryLimit()).toBeUndefined();
    const real = { 'memory/memory.limit_in_bytes': '2147483648\n' };
    expect(cgroupReader(tree(real)).memoryLimit()).toBe(2 * 1024 ** 3);
  });

  it('counts memory in use without total_inactive_file', () => {
    const stat = ['cache 1000', 'inactive_file 111', 'total_cache 2000', 'total_inactive_file 25000000', ''].join('\n');
    const files = { 'memory/memory.usage_in_bytes': '100000000\n', 'memory/memory.stat': stat };
    expect(cgroupReader(tree(files)).memoryUsage()).toBe(75_000_000);
  });

  it('reads cumulative CPU time from cpuacct/cpuacct.usage', () => {
    expect(cgroupReader(tree({ 'cpuacct/cpuacct.usage': '5000000000\n' })).cpuUsageNanos()).toBe(5_000_000_000);
  });

  it('reports nothing from an empty tree', () => {
    const reader = cgroupReader(tree({}));
    expect(reader.cpuLimit()).toBeUndefined();
    expect(reader.memoryLimit()).toBeUndefined();
    expect(reader.memoryUsage()).toBeUndefined();
    expect(reader.cpuUsageNanos()).toBeUndefined();
  });

  it('does not read v1 files when the tree is v2', () => {
    const reader = cgroupReader(tree({ ...V2_BASE, 'cpu/cpu.cfs_quota_us': '200000\n', 'cpu.max': 'max 100000\n' }));
    expect(reader.cpuLimit()).toBeUndefined();
  });
});

describe('cgroupReader on trees copied from real containers (test/fixtures/cgroup)', () => {
  const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/cgroup/${name}`, import.meta.url));

  it('v1, docker run --cpus=1.5 --memory=3g', () => {
    const reader = cgroupReader(fixture('v1-docker-cpus1.5-memory3g'));
    expect(reader.cpuLimit()).toBe(1.5);
    expect(reader.memoryLimit()).toBe(3 * 1024 ** 3);
    expect(reader.memoryUsage()).toBe(860_160 - 20_480);
    expect(reader.cpuUsageNanos()).toBe(97_409_240);
  });

  it('v1, docker run without limits', () => {
    const reader = cgroupReader(fixture('v1-docker-unlimited'));
    expect(reader.cpuLimit()).toBeUndefined();
    expect(reader.memoryLimit()).toBeUndefined();
    expect(reader.memoryUsage()).toBe(966_656 - 20_480);
    expect(reader.cpuUsageNanos()).toBe(93_648_204);
  });

  it("v1, a parent cgroup's limit shown only as hierarchical_memory_limit", () => {
    expect(cgroupReader(fixture('v1-parent-limit-memory2g')).memoryLimit()).toBe(2 * 1024 ** 3);
  });

  it('v2, --cpus=1.5 --memory=3g', () => {
    const reader = cgroupReader(fixture('v2-docker-cpus1.5-memory3g'));
    expect(reader.cpuLimit()).toBe(1.5);
    expect(reader.memoryLimit()).toBe(3 * 1024 ** 3);
    expect(reader.memoryUsage()).toBe(9_437_184 - 5_246_976);
    expect(reader.cpuUsageNanos()).toBe(94_358_000);
  });

  it('v2 without limits', () => {
    const reader = cgroupReader(fixture('v2-docker-unlimited'));
    expect(reader.cpuLimit()).toBeUndefined();
    expect(reader.memoryLimit()).toBeUndefined();
  });
});

describe('cgroupReader, v1 hierarchical limits', () => {
  it('takes the smaller of the own limit and the hierarchical one', () => {
    const stat = (limit: number | string) => `cache 0\nhierarchical_memory_limit ${limit}\ntotal_inactive_file 0\n`;
    const both = (own: number | string, parents: number | string) =>
      cgroupReader(
        tree({ 'memory/memory.limit_in_bytes': `${own}\n`, 'memory/memory.stat': stat(parents) }),
      ).memoryLimit();
    expect(both(4 * 1024 ** 3, 2 * 1024 ** 3)).toBe(2 * 1024 ** 3);
    expect(both(2 * 1024 ** 3, '9223372036854771712')).toBe(2 * 1024 ** 3);
    expect(both('9223372036854771712', '9223372036854771712')).toBeUndefined();
    expect(cgroupReader(tree({ 'memory/memory.stat': stat(1024 ** 3) })).memoryLimit()).toBe(1024 ** 3);
  });
});
