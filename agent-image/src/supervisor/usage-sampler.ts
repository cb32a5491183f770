import type { CgroupReader } from '../limits/cgroup.js';

/** Turns cumulative cgroup CPU time into a percentage of the CPU limit between two samples. */
export class UsageSampler {
  private last: { cpuNanos: number; at: bigint } | undefined;

  constructor(
    private readonly cgroup: CgroupReader,
    /** The offer, not a throttle: the percentage is of what the person gives (it changes with live limits). */
    public cpuLimit: number,
  ) {}

  sample(): { cpuPercent: number; memoryBytes: number } {
    const cpuNanos = this.cgroup.cpuUsageNanos();
    const at = process.hrtime.bigint();
    let cpuPercent = 0;
    if (cpuNanos !== undefined && this.last) {
      const wall = Number(at - this.last.at);
      if (wall > 0)
        cpuPercent = Math.min(100, Math.max(0, ((cpuNanos - this.last.cpuNanos) / (wall * this.cpuLimit)) * 100));
    }
    if (cpuNanos !== undefined) this.last = { cpuNanos, at };
    return {
      cpuPercent: Math.round(cpuPercent * 10) / 10,
      memoryBytes: this.cgroup.memoryUsage() ?? process.memoryUsage().rss,
    };
  }
}
