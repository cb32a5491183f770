import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Linux reports process CPU time in clock ticks of 1/100 s on every platform Docker runs on (USER_HZ). */
const TICKS_PER_SECOND = 100;

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds a process has used, or undefined once it is gone: the sum of its threads' schedstat run time
 * (nanoseconds, so an idle agent's few milliseconds a minute are not lost in 10 ms ticks), else /proc/PID/stat.
 */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const task of readdirSync(`/proc/${pid}/task`))
      ns += Number(read(`/proc/${pid}/task/${task}/schedstat`)?.split(' ')[0] ?? 0);
    if (ns > 0) return ns / 1e9;
  } catch {
    // gone, or no schedstat on this kernel
  }
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // The command name may hold spaces and parentheses: fields are counted after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** Resident memory of a process from /proc/PID/status: total, anonymous, and proportional (PSS). */
export function processMemory(pid: number): { rss: number; rssAnon: number; pss: number } | undefined {
  const status = read(`/proc/${pid}/status`);
  if (!status) return undefined;
  const kib = (text: string | undefined, key: string) => {
    const match = text ? new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text) : null;
    return match ? Number(match[1]) * 1024 : 0;
  };
  const rollup = read(`/proc/${pid}/smaps_rollup`);
  return { rss: kib(status, 'VmRSS'), rssAnon: kib(status, 'RssAnon'), pss: kib(rollup, 'Pss') };
}

export function processTitle(pid: number): string {
  return (read(`/proc/${pid}/cmdline`) ?? '').replace(/\0+$/, '').replace(/\0/g, ' ');
}

export function children(pid: number): number[] {
  const text = read(`/proc/${pid}/task/${pid}/children`) ?? '';
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}

/**
 * A cgroup's memory and CPU accounting, read the same way for the agent's container and for the plain node
 * (which the bench puts in a cgroup of its own, without limits, only to count it like-for-like).
 */
export interface CgroupFigures {
  /** Anonymous memory plus shared memory (Ray's object store): what the node's processes really hold. */
  anonShmem: number;
  /** usage minus inactive file pages: the figure `docker stats` shows. */
  dockerStats: number;
  /** CPU seconds used by every process in the group since it was made. */
  cpuSeconds: number;
  pids: number[];
}

export class Cgroup {
  private constructor(
    readonly version: 1 | 2,
    /** v1: the memory, cpuacct and cpu (scheduler) directories; v2: one directory for all. */
    readonly memoryDir: string,
    readonly cpuDir: string,
    readonly schedDir: string,
    readonly owned: boolean,
  ) {}

  static get v2(): boolean {
    return existsSync('/sys/fs/cgroup/cgroup.controllers');
  }

  /** The cgroup a (container) process lives in. */
  static ofProcess(pid: number): Cgroup {
    const lines = (read(`/proc/${pid}/cgroup`) ?? '').trim().split('\n');
    if (Cgroup.v2) {
      const path = lines.find((line) => line.startsWith('0::'))?.slice(3) ?? '/';
      const dir = join('/sys/fs/cgroup', path);
      return new Cgroup(2, dir, dir, dir, false);
    }
    // Systems that mount cpu and cpuacct together still have both names (as links).
    const of = (controller: string) => {
      const line = lines.find((entry) => entry.split(':')[1]?.split(',').includes(controller));
      if (!line) throw new Error(`process ${pid} has no ${controller} cgroup`);
      return join('/sys/fs/cgroup', controller, line.split(':')[2] ?? '/');
    };
    return new Cgroup(1, of('memory'), of('cpuacct'), of('cpu'), false);
  }

  /**
   * A new cgroup beside another one (root needed): no limits, default weight. Made beside a container's cgroup,
   * its processes compete for CPU exactly as that container's do, without being in a container.
   */
  static createBeside(other: Cgroup, name: string): Cgroup {
    const beside = (dir: string) => {
      const made = join(dirname(dir), name);
      mkdirSync(made, { recursive: true });
      return made;
    };
    if (other.version === 2) {
      const dir = beside(other.memoryDir);
      return new Cgroup(2, dir, dir, dir, true);
    }
    return new Cgroup(1, beside(other.memoryDir), beside(other.cpuDir), beside(other.schedDir), true);
  }

  /** Shell words that move the shell running them into this group (then `exec` the real command). */
  enterScript(): string {
    return [...new Set([this.memoryDir, this.cpuDir, this.schedDir])]
      .map((dir) => `echo $$ > '${join(dir, 'cgroup.procs')}'`)
      .join(' && ');
  }

  /** CFS bandwidth throttling so far: periods, throttled periods, throttled seconds. */
  throttling(): { periods: number; throttled: number; throttledSeconds: number } {
    const stat = read(join(this.schedDir, 'cpu.stat')) ?? '';
    const value = (key: string) => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(stat)?.[1] ?? 0);
    return {
      periods: value('nr_periods'),
      throttled: value('nr_throttled'),
      throttledSeconds: this.version === 2 ? value('throttled_usec') / 1e6 : value('throttled_time') / 1e9,
    };
  }

  pids(): number[] {
    const text = read(join(this.memoryDir, 'cgroup.procs'));
    return text ? text.trim().split('\n').filter(Boolean).map(Number) : [];
  }

  /** What the memory is made of, by the kernel's count in memory.stat: for a line in a log or a result. */
  memoryMix(): string {
    const stat = read(join(this.memoryDir, 'memory.stat')) ?? '';
    const mib = (key: string) => {
      const match = new RegExp(`^${key} (\\d+)$`, 'm').exec(stat);
      return match ? (Number(match[1]) / 1024 ** 2).toFixed(0) : '?';
    };
    const [rss, shmem, cache, active] =
      this.version === 2
        ? ['anon', 'shmem', 'file', 'active_file']
        : ['total_rss', 'total_shmem', 'total_cache', 'total_active_file'];
    return `memory then: rss ${mib(rss as string)} MiB, shmem ${mib(shmem as string)} MiB, file cache ${mib(cache as string)} MiB, active file ${mib(active as string)} MiB`;
  }

  figures(): CgroupFigures | undefined {
    const stat = read(join(this.memoryDir, 'memory.stat'));
    if (!stat) return undefined;
    const value = (key: string) => {
      const match = new RegExp(`^${key} (\\d+)$`, 'm').exec(stat);
      return match ? Number(match[1]) : 0;
    };
    if (this.version === 2) {
      const usage = Number(read(join(this.memoryDir, 'memory.current')) ?? 0);
      const cpu = /^usage_usec (\d+)$/m.exec(read(join(this.cpuDir, 'cpu.stat')) ?? '');
      return {
        anonShmem: value('anon') + value('shmem'),
        dockerStats: usage - value('inactive_file'),
        cpuSeconds: cpu ? Number(cpu[1]) / 1e6 : Number.NaN,
        pids: this.pids(),
      };
    }
    const usage = Number(read(join(this.memoryDir, 'memory.usage_in_bytes')) ?? 0);
    return {
      anonShmem: value('total_rss') + value('total_shmem'),
      dockerStats: usage - value('total_inactive_file'),
      cpuSeconds: Number(read(join(this.cpuDir, 'cpuacct.usage')) ?? Number.NaN) / 1e9,
      pids: this.pids(),
    };
  }

  /** Sum of the processes' own RSS and PSS (RSS counts shared pages once per process; PSS splits them). */
  processSums(): { rss: number; pss: number; processes: number } {
    let rss = 0;
    let pss = 0;
    const pids = this.pids();
    for (const pid of pids) {
      const memory = processMemory(pid);
      if (!memory) continue;
      rss += memory.rss;
      pss += memory.pss;
    }
    return { rss, pss, processes: pids.length };
  }

  /** Kills what is left and removes the group, if this bench made it. */
  remove(): void {
    if (!this.owned) return;
    for (const pid of this.pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of new Set([this.memoryDir, this.cpuDir, this.schedDir])) {
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          rmdirSync(dir);
          break;
        } catch {
          // busy until the killed processes are reaped
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
        }
      }
    }
  }
}
