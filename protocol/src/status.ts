import { z } from 'zod';
import { AgentState, RayNodeState } from './agent-state.js';
import { Sentence, Timestamp } from './common.js';
import { TunnelReport } from './overlay.js';
import { SandboxReport } from './sandbox.js';

export const RegistrationState = z.enum([
  'unregistered',
  'registering',
  'registered',
  'rejected',
  'needs_reregistration',
]);
export type RegistrationState = z.infer<typeof RegistrationState>;

export const HeartbeatHealth = z.enum(['idle', 'healthy', 'failing', 'rate_limited', 'stopped']);
export type HeartbeatHealth = z.infer<typeof HeartbeatHealth>;

export const LimitSource = z.enum(['env', 'cgroup', 'host']);
export const ObjectStoreLocation = z.enum(['shm', 'tmp']);
export type ObjectStoreLocation = z.infer<typeof ObjectStoreLocation>;

export const TimedMessage = z.object({ at: Timestamp, message: Sentence });

/** GET /status on the agent's loopback endpoint. Never carries a secret. */
export const StatusDocument = z.object({
  schemaVersion: z.literal(1),
  state: AgentState,
  stateSince: Timestamp,
  agent: z.object({ version: z.string(), startedAt: Timestamp, uptimeSeconds: z.number().nonnegative() }),
  ray: z.object({
    state: RayNodeState,
    gcsAddress: z.string(),
    nodeIp: z.string().nullable(),
    version: z.string(),
    pythonVersion: z.string(),
    clusterVersion: z.string().nullable(),
    clusterPythonVersion: z.string().nullable(),
    joinedAt: Timestamp.nullable(),
    restarts: z.number().int().nonnegative(),
    recentErrors: z.array(TimedMessage).max(20),
  }),
  registration: z.object({
    state: RegistrationState,
    providerId: z.string().nullable(),
    managerUrl: z.string(),
    registeredAt: Timestamp.nullable(),
  }),
  heartbeat: z.object({
    state: HeartbeatHealth,
    intervalSeconds: z.number().positive(),
    lastSuccessAt: Timestamp.nullable(),
    lastAttemptAt: Timestamp.nullable(),
    consecutiveFailures: z.number().int().nonnegative(),
    failingSince: Timestamp.nullable(),
    nextAttemptAt: Timestamp.nullable(),
    /** Manager clock minus agent clock, seconds; shown only, never used to decide anything. */
    serverClockSkewSeconds: z.number().nullable(),
  }),
  tasks: z.object({
    running: z.number().int().nonnegative(),
    /**
     * What runs now, by the name Ray's worker process titles show (`ray::<task or actor>`), with counts. Optional:
     * older agents lack it, as `completed`, the tasks seen finishing since the agent started.
     */
    byName: z
      .array(z.object({ name: z.string().max(200), count: z.number().int().positive() }))
      .max(50)
      .optional(),
    completed: z.number().int().nonnegative().optional(),
  }),
  /**
   * The limits the node runs under: CPU_LIMIT/MEMORY_LIMIT, never above the container's cgroup or the host. The
   * `ray*` figures and `objectStoreIn` came later than schema 1 itself: optional, so older agents still validate.
   */
  limits: z.object({
    cpus: z.number().positive(),
    memoryBytes: z.number().int().positive(),
    objectStoreBytes: z.number().int().positive(),
    shmBytes: z.number().int().nonnegative().nullable(),
    source: LimitSource,
    /** Whole CPUs Ray schedules (`--num-cpus`): a 2.5-CPU limit gives 2 ("Ray uses 2 of 2.5 CPUs"). */
    rayCpus: z.number().int().positive().optional(),
    /** Ray's schedulable memory (`--memory`), what tasks and actors may ask for. */
    rayMemoryBytes: z.number().int().positive().optional(),
    /** Where the object store lives: /dev/shm, or /tmp when /dev/shm is too small (slower, still in the limit). */
    objectStoreIn: ObjectStoreLocation.optional(),
    /** While the person's controller steps aside: the CPU quota enforced now (below `cpus`); null at full power. */
    throttleCpus: z.number().positive().nullable().optional(),
  }),
  /** The WireGuard tunnel to the cluster's gateway; `state: off` in direct mode. Optional: older agents lack it. */
  tunnel: TunnelReport.optional(),
  /** Ray's gVisor sandboxes on this node (the `gvisor` resource). Optional: older agents lack it. */
  sandbox: SandboxReport.optional(),
  usage: z.object({ cpuPercent: z.number().min(0), memoryBytes: z.number().int().nonnegative() }),
  warnings: z.array(Sentence).max(20),
  lastError: z.object({ code: z.string(), message: Sentence, at: Timestamp }).nullable(),
});
export type StatusDocument = z.infer<typeof StatusDocument>;
