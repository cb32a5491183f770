import { MIN_MEMORY_BYTES } from '@ray-agent/protocol';
import { formatBytes } from '../config/quantity.js';

/**
 * The CPU and memory the node runs under: what CPU_LIMIT/MEMORY_LIMIT asked for, never more than the container's
 * cgroup enforces (the kernel would throttle or OOM-kill above it), and never more than the host has (a cgroup
 * limit above the host's memory is no limit at all).
 */
export interface LimitRequest {
  /** CPU_LIMIT, if set. */
  cpus: number | undefined;
  /** MEMORY_LIMIT, if set. */
  memoryBytes: number | undefined;
}

export interface ContainerFacts {
  cgroupCpus: number | undefined;
  cgroupMemoryBytes: number | undefined;
  hostCpus: number;
  hostMemoryBytes: number;
}

export type LimitOrigin = 'env' | 'cgroup' | 'host';

export interface EffectiveLimits {
  cpus: number;
  memoryBytes: number;
  cpuSource: LimitOrigin;
  memorySource: LimitOrigin;
  /** One figure for the status document: `env` if either variable decided a figure, else `cgroup`, else `host`. */
  source: LimitOrigin;
  /** Sentences for the status document and the log: each names the variable or flag to change. */
  warnings: string[];
}

// A quota over its period is not always an exact decimal (1.9999999 for 2): compare with some room.
const CPU_EPSILON = 1e-6;

function cpuText(cpus: number): string {
  const rounded = Math.round(cpus * 100) / 100;
  return `${rounded} CPU${rounded === 1 ? '' : 's'}`;
}

export function effectiveLimits(request: LimitRequest, facts: ContainerFacts): EffectiveLimits {
  const warnings: string[] = [];

  let containerCpus = facts.hostCpus;
  let containerCpuSource: LimitOrigin = 'host';
  if (facts.cgroupCpus !== undefined) {
    if (facts.cgroupCpus > facts.hostCpus + CPU_EPSILON)
      warnings.push(
        `the container's CPU limit (${cpuText(facts.cgroupCpus)}) is more than this machine has (${cpuText(facts.hostCpus)}), so the limit used is ${cpuText(facts.hostCpus)}`,
      );
    else {
      containerCpus = facts.cgroupCpus;
      containerCpuSource = 'cgroup';
    }
  }
  let containerMemory = facts.hostMemoryBytes;
  let containerMemorySource: LimitOrigin = 'host';
  if (facts.cgroupMemoryBytes !== undefined) {
    if (facts.cgroupMemoryBytes > facts.hostMemoryBytes)
      warnings.push(
        `the container's memory limit (${formatBytes(facts.cgroupMemoryBytes)}) is more than this machine has (${formatBytes(facts.hostMemoryBytes)}), so the limit used is ${formatBytes(facts.hostMemoryBytes)}`,
      );
    else {
      containerMemory = facts.cgroupMemoryBytes;
      containerMemorySource = 'cgroup';
    }
  }
  const where = (source: LimitOrigin) => (source === 'cgroup' ? 'the container has' : 'this machine has');

  let cpus = containerCpus;
  let cpuSource: LimitOrigin = containerCpuSource;
  if (request.cpus !== undefined) {
    if (request.cpus > containerCpus + CPU_EPSILON)
      warnings.push(
        `CPU_LIMIT asks for ${cpuText(request.cpus)} but ${where(containerCpuSource)} ${cpuText(containerCpus)}, so the limit used is ${cpuText(containerCpus)}; lower CPU_LIMIT${containerCpuSource === 'cgroup' ? " or raise the container's --cpus" : ''}`,
      );
    else {
      cpus = request.cpus;
      cpuSource = 'env';
    }
  }
  let memoryBytes = containerMemory;
  let memorySource: LimitOrigin = containerMemorySource;
  if (request.memoryBytes !== undefined) {
    if (request.memoryBytes > containerMemory)
      warnings.push(
        `MEMORY_LIMIT asks for ${formatBytes(request.memoryBytes)} but ${where(containerMemorySource)} ${formatBytes(containerMemory)}, so the limit used is ${formatBytes(containerMemory)}; lower MEMORY_LIMIT${containerMemorySource === 'cgroup' ? " or raise the container's --memory" : ''}`,
      );
    else {
      memoryBytes = request.memoryBytes;
      memorySource = 'env';
    }
  }
  const sources = [cpuSource, memorySource];
  const source: LimitOrigin = sources.includes('env') ? 'env' : sources.includes('cgroup') ? 'cgroup' : 'host';
  return { cpus, memoryBytes, cpuSource, memorySource, source, warnings };
}

/**
 * Why these limits cannot run a Ray node, as one line naming what to change, or undefined when they can. MEMORY_LIMIT
 * below the minimum is refused by the config already; this catches a container (or machine) that is too small.
 */
export function tooLittleMemory(limits: EffectiveLimits): string | undefined {
  if (limits.memoryBytes >= MIN_MEMORY_BYTES) return undefined;
  const minimum = formatBytes(MIN_MEMORY_BYTES);
  const size = formatBytes(limits.memoryBytes);
  if (limits.memorySource === 'host')
    return `this machine has only ${size} of memory, below the ${minimum} a Ray node needs`;
  if (limits.memorySource === 'env')
    return `MEMORY_LIMIT: ${size} is below the ${minimum} a Ray node needs (e.g. MEMORY_LIMIT=2g)`;
  return `--memory: the container's memory limit is ${size}, below the ${minimum} a Ray node needs (e.g. docker run --memory=2g)`;
}
