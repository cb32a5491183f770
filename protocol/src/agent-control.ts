import { z } from 'zod';
import { STATE_DIR } from './agent-contract.js';
import { Sentence } from './common.js';

/**
 * Requests the controller makes of a running agent, carried by `docker exec <agent> node AGENT_CONTROL_BUNDLE
 * '<request JSON>'`: the control client prints one AgentControlReply line and exits 0 when `ok`, 1 otherwise. The
 * exec runs as the agent's own user inside its container, so no port or socket is opened to the host.
 */
export const AGENT_CONTROL_BUNDLE = '/opt/ray-agent/control.mjs';

/**
 * The limits the person offers, written by the agent when told (`limits`): it outlives agent restarts, so an agent
 * restarted while stepped aside still sizes Ray by the offer, not by the throttled cgroup.
 */
export const LIVE_LIMITS_FILE = `${STATE_DIR}/limits.json`;

export const LiveLimits = z.object({
  /** The offer: Ray's logical CPUs and memory follow these (resized live where Ray allows). */
  cpus: z.number().positive().max(4096),
  memoryBytes: z.number().int().positive(),
  /** While stepping aside: the CPU quota the kernel enforces now, below `cpus`; null at full power. */
  throttleCpus: z.number().positive().max(4096).nullable(),
  updatedAt: z.iso.datetime(),
});
export type LiveLimits = z.infer<typeof LiveLimits>;

/** Why a drain was asked for: shown in the agent's log and status, and given to Ray as the drain's message. */
export const DrainReason = z.enum(['pause', 'suspend', 'shutdown', 'update', 'leave', 'policy']);
export type DrainReason = z.infer<typeof DrainReason>;

export const AgentControlRequest = z.discriminatedUnion('command', [
  /** New offered limits and/or a throttle; the kernel's limits are `docker update`d by the controller. */
  z.object({
    command: z.literal('limits'),
    cpus: LiveLimits.shape.cpus,
    memoryBytes: LiveLimits.shape.memoryBytes,
    throttleCpus: LiveLimits.shape.throttleCpus,
  }),
  /**
   * Ray's own drain (reason preemption) with this deadline: no new work, running work may finish, libraries that
   * honour drains (Train, Serve) save or move theirs. The agent stops Ray once the node is idle or the deadline
   * passed, and stays up (not contributing) until the container is stopped; it does not restart Ray meanwhile.
   */
  z.object({ command: z.literal('drain'), deadlineSeconds: z.number().int().min(0).max(86_400), reason: DrainReason }),
]);
export type AgentControlRequest = z.infer<typeof AgentControlRequest>;

export const AgentControlReply = z.object({
  ok: z.boolean(),
  message: Sentence,
  /** After `limits`: the CPUs Ray schedules now, and whether Ray's view changed live (false: needs a restart). */
  rayCpus: z.number().int().nonnegative().optional(),
  resizedLive: z.boolean().optional(),
  /** After `drain`: running tasks when the drain ended (0: all finished). */
  tasksLeft: z.number().int().nonnegative().optional(),
});
export type AgentControlReply = z.infer<typeof AgentControlReply>;
