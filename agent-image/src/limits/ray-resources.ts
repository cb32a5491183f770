import {
  MAX_SLOW_OBJECT_STORE_BYTES,
  MIN_OBJECT_STORE_BYTES,
  type RayMemoryPlan,
  rayCpusFor,
  rayMemoryPlan,
} from '@ray-agent/protocol';
import { formatBytes } from '../config/quantity.js';

/**
 * How much of the container's limit Ray may take. Ray's defaults assume it owns the machine: left alone it sizes
 * the object store from host memory and gets the container OOM-killed. Here every figure fits inside the limit
 * (the split is `rayMemoryPlan` in protocol, shared with the controller that sizes /dev/shm): a reserve for Ray's
 * own daemons and the agent, the object store, and the rest as Ray's schedulable "memory" resource.
 */
export interface LimitInputs {
  cpus: number;
  memoryBytes: number;
  source: 'env' | 'cgroup' | 'host';
  /** Size of /dev/shm; undefined when there is no such mount. */
  shmBytes: number | undefined;
  /** Free space in /tmp, where Ray keeps the object store when /dev/shm is too small; undefined when unknown. */
  tmpFreeBytes?: number | undefined;
}

export interface RayResources {
  /** `--num-cpus`: Ray schedules whole CPUs, so a 2.5-CPU limit gives 2. */
  numCpus: number;
  /** `--memory`. */
  memoryBytes: number;
  /** `--object-store-memory`. */
  objectStoreBytes: number;
  plan: RayMemoryPlan;
  warnings: string[];
}

/** Ray refuses object stores below 75 MiB. */
export const MIN_OBJECT_STORE = MIN_OBJECT_STORE_BYTES;
const MiB = 1024 ** 2;

export function rayResources(limits: LimitInputs): RayResources {
  const plan = rayMemoryPlan(limits.memoryBytes, limits.shmBytes, limits.tmpFreeBytes);
  const warnings: string[] = [];
  const shm = formatBytes(limits.shmBytes ?? 0);
  const store = formatBytes(plan.objectStoreBytes);
  const fix = `run the container with --shm-size=${plan.shmBytesWanted / MiB}m`;
  if (plan.cut === 'shm')
    warnings.push(
      `/dev/shm is ${shm}, so Ray's object store is cut to ${store}; ${fix} for the full ${formatBytes(plan.fullObjectStoreBytes)}`,
    );
  else if (plan.cut === 'tmp')
    warnings.push(
      `/dev/shm is only ${shm}, too small for Ray's object store, so Ray keeps its ${store} store in /tmp instead, which is slower and counts against the memory limit; ${fix}`,
    );
  else if (plan.cut === 'tmp_space')
    warnings.push(
      `/dev/shm is only ${shm}, too small for Ray's object store, so Ray keeps it in /tmp instead, cut to ${store} (${
        plan.objectStoreBytes === MAX_SLOW_OBJECT_STORE_BYTES
          ? "Ray's 10 GB ceiling for a store outside /dev/shm"
          : `half of the ${formatBytes(limits.tmpFreeBytes ?? 0)} free in /tmp`
      }), which is slower and counts against the memory limit; ${fix}`,
    );
  const numCpus = rayCpusFor(limits.cpus);
  if (limits.cpus < 1)
    warnings.push(`the CPU limit ${limits.cpus} is below one CPU; Ray still schedules one task at a time, slowly`);
  return {
    numCpus,
    memoryBytes: plan.rayMemoryBytes,
    objectStoreBytes: plan.objectStoreBytes,
    plan,
    warnings,
  };
}
