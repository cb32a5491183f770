import { z } from 'zod';
import { TunnelState } from './overlay.js';
import { PolicyView } from './policy.js';
import { SandboxState } from './sandbox.js';

/**
 * What the tray and the window show: one view of the agent, derived from the container's state and its status
 * endpoint. "Attention" states always carry a sentence a person understands.
 */
export const ViewPhase = z.enum([
  'off', // not contributing, nothing running
  'docker-missing', // no Docker Engine installed
  'docker-stopped', // installed but not running
  'docker-denied', // no permission on the socket
  'pulling', // fetching the agent image
  'starting', // container up, agent not yet contributing
  'contributing',
  'reconnecting',
  'draining',
  'stopping',
  'unreachable', // container running but its status endpoint does not answer
  'crash-looping', // the container keeps restarting
  'outdated', // the agent speaks an older status schema
  'error', // the agent reports an error
]);
export type ViewPhase = z.infer<typeof ViewPhase>;

export const StatusView = z.object({
  phase: ViewPhase,
  /** One line for the tray tooltip and the top of the window. */
  headline: z.string(),
  /** What to do about it, when something needs the person. */
  detail: z.string().nullable(),
  contributing: z.boolean(),
  registration: z.object({ state: z.string(), providerId: z.string().nullable() }),
  heartbeat: z.object({
    healthy: z.boolean(),
    lastSuccessAt: z.string().nullable(),
    failingSince: z.string().nullable(),
    consecutiveFailures: z.number().int(),
  }),
  runningTasks: z.number().int(),
  limits: z
    .object({
      cpus: z.number(),
      memoryBytes: z.number(),
      /** Whole CPUs Ray schedules; below `cpus` when the limit is fractional ("Ray uses 2 of 2.5 CPUs"). */
      rayCpus: z.number().optional(),
    })
    .nullable(),
  agentVersion: z.string().nullable(),
  /**
   * The tunnel in one line ("Tunnel: up, handshake 12 s ago, …"), and what is wrong with it when something is.
   * Null in direct mode or when nothing is known yet. Optional: a view from an older controller lacks it.
   */
  tunnel: z
    .object({
      state: TunnelState,
      line: z.string(),
      problem: z.string().nullable(),
    })
    .nullable()
    .optional(),
  /**
   * Ray's gVisor sandboxes on this node in one line ("ready: 2 slots, 1 running", or why not). Null while the agent
   * is not running. Optional: a view from an older controller lacks it.
   */
  sandbox: z.object({ state: SandboxState, line: z.string() }).nullable().optional(),
  /** The contribution policy's state in one sentence. Optional: a view from an older controller lacks it. */
  policy: PolicyView.nullable().optional(),
  /** What runs now, by task or actor name, with counts (from the agent's worker titles). */
  tasks: z.array(z.object({ name: z.string(), count: z.number().int().positive() })).optional(),
  /** The cluster this computer contributes to, for the window's "where does my compute go" line. */
  cluster: z.object({ address: z.string(), managerUrl: z.string() }).nullable().optional(),
  /** An agent image update under way or just finished (null: none). */
  update: z
    .object({
      state: z.enum(['available', 'pulling', 'waiting', 'switching', 'rolled-back', 'failed']),
      sentence: z.string(),
    })
    .nullable()
    .optional(),
  updatedAt: z.string(),
});
export type StatusView = z.infer<typeof StatusView>;

/** Pull progress, summed across layers. */
export const PullProgress = z.object({
  image: z.string(),
  currentBytes: z.number().nonnegative(),
  totalBytes: z.number().nonnegative(),
  /** 0..1, or null before any layer size is known. */
  fraction: z.number().min(0).max(1).nullable(),
  done: z.boolean(),
  error: z.string().nullable(),
});
export type PullProgress = z.infer<typeof PullProgress>;

/** CPU and memory a person may offer: what Docker can give, with the host's own figures beside them. */
export const OfferableLimits = z.object({
  docker: z.object({ cpus: z.number(), memoryBytes: z.number() }).nullable(),
  host: z.object({ cpus: z.number(), memoryBytes: z.number(), model: z.string() }),
});
export type OfferableLimits = z.infer<typeof OfferableLimits>;
