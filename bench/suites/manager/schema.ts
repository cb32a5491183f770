import { z } from 'zod';

const finite = z.number().finite();
const nonnegative = finite.nonnegative();

export interface ManagerSettings {
  /** Providers stored (seeded through the manager's own store code). */
  providers: number;
  reps: number;
  /** Length of each measured load run. */
  seconds: number;
  /** Connections of the closed loop (each sends when answered: the most the manager sustains). */
  closedConnections: number;
  /** Connections and rate of the open loop (the goal's: 10,000/s over ≥ 1,000 TLS connections). */
  openConnections: number;
  rate: number;
  /** Listing walks per repetition, every page at PROVIDER_PAGE_MAX. */
  listingWalks: number;
  /** Simulated agents of the reconnect storm (0: none) and storm repetitions. */
  stormAgents: number;
  stormReps: number;
  /** Longest wait for the storm to be absorbed before the run is counted as not absorbed. */
  stormTimeoutSeconds: number;
  /** A separate closed-loop run under `node --cpu-prof` (0: none). */
  profileSeconds: number;
}

export const Latency = z.object({
  p50: nonnegative,
  p90: nonnegative,
  p99: nonnegative,
  max: nonnegative,
  mean: nonnegative,
});
export type Latency = z.infer<typeof Latency>;

/** One autocannon run against one endpoint. */
export const LoadRun = z.object({
  endpoint: z.enum(['heartbeat', 'healthz']),
  mode: z.enum(['closed', 'open']),
  connections: z.number().int().positive(),
  /** The rate offered (open loop), null for the closed loop. */
  offeredRate: finite.positive().nullable(),
  seconds: finite.positive(),
  /** 2xx answers in the run, and every other outcome. */
  ok: z.number().int().nonnegative(),
  non2xx: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  timeouts: z.number().int().nonnegative(),
  answeredPerSecond: nonnegative,
  latencyMs: Latency,
  /** The manager's CPU time (user + system) over the run. */
  managerCpuSeconds: nonnegative,
  loadCpuSeconds: nonnegative,
});
export type LoadRun = z.infer<typeof LoadRun>;

export const Listing = z.object({
  pages: z.number().int().nonnegative(),
  providersSeen: z.number().int().nonnegative(),
  /** Every stored provider seen exactly once on each walk. */
  complete: z.boolean(),
  latencyMs: Latency,
});
export type Listing = z.infer<typeof Listing>;

export const StormRep = z.object({
  agents: z.number().int().nonnegative(),
  /** Agents whose last heartbeat before the kill was accepted. */
  healthyBefore: z.number().int().nonnegative(),
  /** From the new manager's start until the last agent's first accepted heartbeat; null: not within the timeout. */
  absorbedSeconds: nonnegative.nullable(),
  /** The same, from the kill. */
  fromKillSeconds: nonnegative.nullable(),
  /** Agents heartbeating again at the end, and first-success times after the restart (s) across agents. */
  recovered: z.number().int().nonnegative(),
  recoveredSeconds: z.object({ p50: nonnegative, p90: nonnegative, max: nonnegative }).nullable(),
  /** Failed heartbeat attempts after the kill, by kind ("network", "http 503", ...). */
  failures: z.record(z.string(), z.number().int().nonnegative()),
  managerDownSeconds: nonnegative,
});
export type StormRep = z.infer<typeof StormRep>;

export const CpuProfile = z.object({
  seconds: finite,
  samples: z.number().int().nonnegative(),
  top: z.array(z.object({ name: z.string(), selfPercent: finite })),
  byArea: z.record(z.string(), finite),
});
export type CpuProfile = z.infer<typeof CpuProfile>;

export const ManagerData = z.object({
  providers: z.number().int().nonnegative(),
  seedSeconds: nonnegative,
  /** The manager and the load generator each on a core of their own (taskset), when the machine has two. */
  pinned: z.object({ manager: z.string().nullable(), load: z.string().nullable() }),
  tls: z.string(),
  pageLimit: z.number().int().positive(),
  reps: z.array(z.object({ rep: z.number().int().nonnegative(), runs: z.array(LoadRun), listing: Listing })),
  managerRssBytes: nonnegative,
  storm: z.array(StormRep),
  profile: CpuProfile.nullable(),
});
export type ManagerData = z.infer<typeof ManagerData>;
