import { z } from 'zod';

/** The raw data of one nodes run (bench/results/nodes.json `data`): everything figuresOf and details read. */

const n = z.number().finite();
export const Kind = z.enum(['agent', 'plain']);
export type Kind = z.infer<typeof Kind>;

/** One idle window of one node: memory sampled through it (medians), CPU as a delta over it. */
export const Footprint = z.object({
  seconds: n,
  /** usage − inactive files: what `docker stats` shows. */
  cgroupDockerStatsBytes: n,
  /** anonymous + shared (Ray's object store, the /tmp tmpfs). */
  cgroupAnonShmemBytes: n,
  processRssSumBytes: n,
  processPssSumBytes: n,
  processes: n,
  /** Whole container, % of one core. */
  cgroupCpuPercent: n,
  /** The agent's own Node.js process (agent arm only). */
  agent: z.object({ rssBytes: n, rssAnonBytes: n, pssBytes: n, cpuPercent: n }).optional(),
});
export type Footprint = z.infer<typeof Footprint>;

export const Batch = z.object({ tasks: n, elapsed: n, perSecond: n, cpuPerTask: n.optional() });
export type Batch = z.infer<typeof Batch>;

export const Throttling = z.object({ periods: n, throttled: n, throttledSeconds: n });

/** GET /status load on the agent, judged at the server by the agent's own histogram. */
export const StatusLoad = z.object({
  requests: n,
  non2xx: n,
  errors: n,
  clientP99Ms: n,
  /** Histogram delta over the load, or null when the agent has no such metric (yet). */
  server: z.object({ count: n, within1ms: n, within2ms: n, buckets: z.array(z.tuple([n, n])) }).nullable(),
});
export type StatusLoad = z.infer<typeof StatusLoad>;

export const Arm = z.object({
  kind: Kind,
  /** 0 when this arm was started (and stopped) first in its pair. */
  position: z.number().int().min(0).max(1),
  name: z.string(),
  alive: z.boolean(),
  join: z.object({ aliveSeconds: n, registeredSeconds: n.nullable(), contributingSeconds: n }),
  settle: z.object({ seconds: n, cpuPercent: n, settled: z.boolean() }).optional(),
  /** Idle windows: `idle` unpolled; `polled` (agent only) with the tray's polling of /status. */
  idle: Footprint.optional(),
  polled: Footprint.optional(),
  compute: z
    .object({ cpu: z.array(Batch), tiny: z.array(Batch), failures: z.array(z.string()), throttling: Throttling })
    .optional(),
  status: StatusLoad.optional(),
  stop: z.object({
    mainExitSeconds: n,
    allGoneSeconds: n,
    /** With tasks: how long the tasks still had to run when the signal went, and how they ended. */
    busy: z
      .object({
        tasks: n,
        taskSeconds: n,
        remainingSeconds: n,
        completed: n,
        failed: n,
        errors: z.array(z.string()),
      })
      .optional(),
  }),
  /** `ray start`'s own command line inside the container (both arms must ask Ray for the same node). */
  rayStart: z.string().optional(),
  /** Agent only: its log lines as [seconds after create+start, message]. */
  agentLog: z.array(z.tuple([n, z.string()])).optional(),
});
export type Arm = z.infer<typeof Arm>;

export const Pair = z.object({
  rep: z.number().int().min(0),
  mode: z.enum(['main', 'busy']),
  /** Which window came first in this pair (main only). */
  firstWindow: z.enum(['idle', 'polled']).optional(),
  /** Per compute round, which arm ran first. */
  roundOrder: z.array(Kind).default([]),
  agent: Arm,
  plain: Arm,
});
export type Pair = z.infer<typeof Pair>;

export const NodesData = z.object({
  imageId: z.string(),
  /** The seed of every random order of the run (arm order, window order, round order). */
  seed: z.number().int(),
  shape: z.object({ cpus: n, memoryBytes: n, cpuset: z.string().nullable() }),
  /** A bare `node` in the same image (same flags): the floor under the agent's own memory. */
  bareNode: z.object({ rssBytes: z.array(n), rssAnonBytes: z.array(n) }),
  pairs: z.array(Pair),
});
export type NodesData = z.infer<typeof NodesData>;
