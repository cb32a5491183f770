import { formatBytes } from '../config/quantity.js';

/**
 * How much of the container's limit Ray may take. Ray's defaults assume it owns the machine: left alone it sizes
 * the object store from host memory and gets the container OOM-killed. Here every figure fits inside the limit:
 * a reserve for Ray's own daemons and the agent, the object store (shared memory), and the rest as Ray's
 * schedulable "memory" resource.
 */
export interface LimitInputs {
  cpus: number;
  memoryBytes: number;
  source: 'env' | 'cgroup' | 'host';
  /** Size of /dev/shm; undefined when there is no such mount. */
  shmBytes: number | undefined;
}

export interface RayResources {
  numCpus: number;
  memoryBytes: number;
  objectStoreBytes: number;
  warnings: string[];
}

const MiB = 1024 ** 2;
/** Ray refuses object stores below 75 MiB. */
export const MIN_OBJECT_STORE = 75 * MiB;
const OBJECT_STORE_SHARE = 0.3;

export function rayResources(limits: LimitInputs): RayResources {
  const warnings: string[] = [];
  const reserve = Math.min(768 * MiB, Math.max(256 * MiB, Math.floor(limits.memoryBytes * 0.25)));
  let objectStore = Math.max(MIN_OBJECT_STORE, Math.floor(limits.memoryBytes * OBJECT_STORE_SHARE));
  if (limits.shmBytes !== undefined) {
    // Keep a margin: Ray's plasma allocator needs a little headroom beyond the store itself.
    const shmRoom = Math.floor(limits.shmBytes * 0.9);
    if (shmRoom < objectStore) {
      const wanted = Math.ceil((objectStore / 0.9 / MiB) * 1.01);
      if (shmRoom >= MIN_OBJECT_STORE) {
        warnings.push(
          `/dev/shm is ${formatBytes(limits.shmBytes)}, so Ray's object store is cut to ${formatBytes(shmRoom)}; run the container with --shm-size=${wanted}m for the full ${formatBytes(objectStore)}`,
        );
        objectStore = shmRoom;
      } else {
        warnings.push(
          `/dev/shm is only ${formatBytes(limits.shmBytes)}, too small for Ray's object store, which falls back to slow disk; run the container with --shm-size=${wanted}m`,
        );
      }
    }
  }
  const memory = Math.max(64 * MiB, limits.memoryBytes - reserve - objectStore);
  const numCpus = Math.max(1, Math.floor(limits.cpus + 1e-9));
  if (limits.cpus < 1)
    warnings.push(`the CPU limit ${limits.cpus} is below one CPU; Ray still schedules one task at a time, slowly`);
  return { numCpus, memoryBytes: memory, objectStoreBytes: objectStore, warnings };
}
