import { z } from 'zod';

const n = z.number().finite();

/** One over-allocation: a task asks for more than the container's memory limit. */
export const MemoryTrial = z.object({
  limitBytes: n,
  taskMiB: n,
  /** How the driver saw the task end: completed, killed-by-ray (memory monitor), worker-crashed, node-died, error. */
  outcome: z.string(),
  error: z.string(),
  /** docker inspect State.OOMKilled and RestartCount after the task. */
  oomKilled: z.boolean(),
  restarts: n,
  /** The kernel's OOM kills in the container's cgroup during the trial (memory.oom_control / memory.events). */
  kernelOomKills: n,
  /** The cgroup's peak usage (memory.max_usage_in_bytes / memory.peak), bytes. */
  peakBytes: n,
  /** A host process outside the container kept all of its resident memory through the trial. */
  hostKeptBytes: n,
  hostHeldBytes: n,
  /** A follow-up task ran on the node (the same Ray node, or the agent's node after a restart). */
  followUpRan: z.boolean(),
  followUpSameNode: z.boolean(),
  followUpSeconds: n,
  agentState: z.string(),
});
export type MemoryTrial = z.infer<typeof MemoryTrial>;

/** Objects beyond the object store: where they went, and whether they came back intact. */
export const SpillTrial = z.object({
  limitBytes: n,
  objectStoreBytes: n,
  putBytes: n,
  putSeconds: n,
  /** Bytes on the spill volume while the objects were held. */
  spilledBytes: n,
  /** /tmp (tmpfs, in the memory cgroup) used at the same moment, bytes. */
  tmpBytes: n,
  intact: n,
  objects: n,
  /** Why reading the objects back failed (e.g. Ray's memory monitor killed a worker), or null. */
  failure: z.string().nullable(),
});
export type SpillTrial = z.infer<typeof SpillTrial>;

/** One window of saturating tasks under a CPU limit, with the host's wake-up latency against an unloaded window. */
export const CpuWindow = z.object({
  limit: n,
  seconds: n,
  /** Container CPU seconds over the window ÷ wall seconds: cores used. */
  cores: n,
  periods: n,
  throttled: n,
  throttledSeconds: n,
  /** A host timer loop's wake-up overshoot, µs: under load, and in an unloaded window of the same length. */
  wakeP99: n,
  wakeMax: n,
  idleWakeP99: n,
  idleWakeMax: n,
});
export type CpuWindow = z.infer<typeof CpuWindow>;

export const Scale = z.object({
  tinyTasks: n,
  tinyCompleted: n,
  tinySeconds: n,
  largeBytes: n,
  largeOk: z.boolean(),
  largeSeconds: n,
  actors: n,
  actorSeconds: n,
  onceTasks: n,
  onceSeconds: n,
});
export type Scale = z.infer<typeof Scale>;

export const LimitsData = z.object({
  memory: z.array(MemoryTrial),
  spill: z.array(SpillTrial),
  cpu: z.array(CpuWindow),
  scale: z.array(Scale),
  /** How host wake-up latency was measured (cyclictest, or the suite's own timer loop when it is absent). */
  wakeTool: z.string(),
});
export type LimitsData = z.infer<typeof LimitsData>;

export interface LimitsSettings {
  /** Repetitions of each CPU window per limit, and the window's length. */
  cpuReps: number;
  cpuSeconds: number;
  cpuLimits: number[];
  memoryReps: number;
  /** The memory-limited agent's limit and the task's allocation (the 2 GB and 3 GB in full). */
  memoryLimitMiB: number;
  memoryTaskMiB: number;
  spillObjects: number;
  spillObjectMiB: number;
  scaleReps: number;
  tinyTasks: number;
  largeMiB: number;
  churnActors: number;
  churnTasks: number;
}
