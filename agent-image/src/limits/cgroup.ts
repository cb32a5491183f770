import { readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';

/**
 * The container's limits and usage as the kernel enforces them. cgroup v2 has one tree (`cpu.max`,
 * `memory.max`); v1 splits controllers (`cpu/cpu.cfs_quota_us`, `memory/memory.limit_in_bytes`). Both are read.
 */
export interface CgroupReader {
  cpuLimit(): number | undefined;
  memoryLimit(): number | undefined;
  /** Cumulative CPU time of the container, in nanoseconds. */
  cpuUsageNanos(): number | undefined;
  /** Memory in use, excluding reclaimable file cache, as `docker stats` counts it. */
  memoryUsage(): number | undefined;
}

export function cgroupReader(root = '/sys/fs/cgroup'): CgroupReader {
  const read = (path: string) => {
    try {
      return readFileSync(`${root}/${path}`, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const statField = (text: string | undefined, field: string) => {
    const match = text === undefined ? null : new RegExp(`^${field} (\\d+)$`, 'm').exec(text);
    return match ? Number(match[1]) : undefined;
  };
  // v1 reports "no limit" as a huge page-aligned number.
  const realLimit = (bytes: number) => (Number.isFinite(bytes) && bytes > 0 && bytes < 2 ** 60 ? bytes : undefined);
  const v2 = read('cgroup.controllers') !== undefined;

  return {
    cpuLimit() {
      if (v2) {
        const [quota, period] = (read('cpu.max') ?? 'max').split(/\s+/);
        return quota === 'max' || quota === undefined ? undefined : Number(quota) / Number(period ?? 100000);
      }
      const quota = Number(read('cpu/cpu.cfs_quota_us') ?? read('cpu,cpuacct/cpu.cfs_quota_us') ?? -1);
      const period = Number(read('cpu/cpu.cfs_period_us') ?? read('cpu,cpuacct/cpu.cfs_period_us') ?? 100000);
      return quota > 0 ? quota / period : undefined;
    },
    memoryLimit() {
      if (v2) {
        const text = read('memory.max');
        return text === undefined || text === 'max' ? undefined : realLimit(Number(text));
      }
      // v1 shows the container's own cgroup; a smaller limit on a parent (a pod, a slice) is in memory.stat.
      const own = realLimit(Number(read('memory/memory.limit_in_bytes') ?? Number.NaN));
      const parents = realLimit(statField(read('memory/memory.stat'), 'hierarchical_memory_limit') ?? Number.NaN);
      if (own === undefined || parents === undefined) return own ?? parents;
      return Math.min(own, parents);
    },
    cpuUsageNanos() {
      if (v2) {
        const micros = statField(read('cpu.stat'), 'usage_usec');
        return micros === undefined ? undefined : micros * 1000;
      }
      const text = read('cpuacct/cpuacct.usage') ?? read('cpu,cpuacct/cpuacct.usage');
      return text === undefined ? undefined : Number(text);
    },
    memoryUsage() {
      if (v2) {
        const current = Number(read('memory.current') ?? Number.NaN);
        const inactive = statField(read('memory.stat'), 'inactive_file') ?? 0;
        return Number.isNaN(current) ? undefined : Math.max(0, current - inactive);
      }
      const usage = Number(read('memory/memory.usage_in_bytes') ?? Number.NaN);
      const inactive = statField(read('memory/memory.stat'), 'total_inactive_file') ?? 0;
      return Number.isNaN(usage) ? undefined : Math.max(0, usage - inactive);
    },
  };
}

export function hostCpus(): number {
  return os.availableParallelism();
}

export function hostMemory(): number {
  return os.totalmem();
}

/** Size of the /dev/shm mount, where Ray's object store lives; undefined if there is none. */
export function shmSize(path = '/dev/shm'): number | undefined {
  try {
    const stats = statfsSync(path);
    return stats.blocks * stats.bsize;
  } catch {
    return undefined;
  }
}

/** Free space under `path` for this user (where Ray puts its object store when /dev/shm is too small). */
export function freeBytes(path = '/tmp'): number | undefined {
  try {
    const stats = statfsSync(path);
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}
