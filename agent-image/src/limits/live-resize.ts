import { MIN_MEMORY_BYTES, MIN_RAY_MEMORY_BYTES } from '@ray-agent/protocol';
import { formatBytes } from '../config/quantity.js';
import { type RayResources, rayResources } from './ray-resources.js';

export interface LiveOffer {
  cpus: number;
  memoryBytes: number;
  throttleCpus: number | null;
}

export interface LiveFacts {
  hostCpus: number;
  hostMemoryBytes: number;
  /** The container's memory limit now (after the controller's `docker update`); undefined when unlimited. */
  cgroupMemoryBytes: number | undefined;
  shmBytes: number | undefined;
  tmpFreeBytes: number | undefined;
  /** The object store of the running node: Ray cannot resize it live. */
  runningObjectStoreBytes: number;
}

export type LivePlan =
  | { kind: 'refused'; message: string }
  | {
      kind: 'ok';
      /** What a (re)started node gets: the same sizing as at the agent's start. */
      resources: RayResources;
      /** Ray's logical figures for the running node. */
      rayCpus: number;
      rayMemoryBytes: number;
      warnings: string[];
    };

const EXAMPLE = '{"command":"limits","cpus":2,"memoryBytes":4294967296,"throttleCpus":null}';

/**
 * Ray's figures for a new offer, sized as at start (`rayCpusFor`, `rayMemoryPlan`), never above what the kernel
 * allows now: a throttle only slows the tasks down, so it leaves Ray's CPU count alone.
 */
export function planLiveLimits(offer: LiveOffer, facts: LiveFacts): LivePlan {
  if (offer.memoryBytes < MIN_MEMORY_BYTES)
    return {
      kind: 'refused',
      message: `memoryBytes: ${formatBytes(offer.memoryBytes)} is below the ${formatBytes(MIN_MEMORY_BYTES)} a Ray node needs (e.g. ${EXAMPLE})`,
    };
  if (offer.throttleCpus !== null && offer.throttleCpus > offer.cpus + 1e-9)
    return {
      kind: 'refused',
      message: `throttleCpus: ${offer.throttleCpus} is above the offered cpus ${offer.cpus}; a throttle is below the offer, or null at full power (e.g. ${EXAMPLE})`,
    };
  const warnings: string[] = [];
  const cpus = Math.min(offer.cpus, facts.hostCpus);
  if (cpus < offer.cpus) warnings.push(`the offer of ${offer.cpus} CPUs is more than this machine has (${cpus})`);
  let memoryBytes = Math.min(offer.memoryBytes, facts.hostMemoryBytes);
  if (facts.cgroupMemoryBytes !== undefined && facts.cgroupMemoryBytes < memoryBytes) {
    memoryBytes = facts.cgroupMemoryBytes;
    warnings.push(
      `the container's memory limit (${formatBytes(facts.cgroupMemoryBytes)}) is below the offered ${formatBytes(offer.memoryBytes)}, so Ray gets memory for ${formatBytes(memoryBytes)}; raise the limit (docker update --memory) before the offer`,
    );
  }
  const resources = rayResources({
    cpus,
    memoryBytes,
    source: 'env',
    shmBytes: facts.shmBytes,
    tmpFreeBytes: facts.tmpFreeBytes,
  });
  // The running store keeps its size: what it holds beyond the new plan's store comes out of Ray's memory.
  const excess = Math.max(0, facts.runningObjectStoreBytes - resources.objectStoreBytes);
  const rayMemoryBytes = Math.max(MIN_RAY_MEMORY_BYTES, resources.memoryBytes - excess);
  return { kind: 'ok', resources, rayCpus: resources.numCpus, rayMemoryBytes, warnings };
}
