import type { DrainReason } from '@ray-agent/protocol';

/**
 * What the contribution policy wants the agent to be doing now. The policy engine decides it; an actuator makes the
 * container match it, idempotently (applying the same target twice changes nothing), so a controller that restarts
 * simply applies the current target again.
 */
export type PolicyTarget =
  | { kind: 'full' }
  /** Stepping aside: the container keeps `cpuFraction` of its CPU limit; Ray's view and running tasks stay. */
  | { kind: 'throttled'; cpuFraction: number }
  | { kind: 'stopped'; stop: StopHow };

/**
 * drain: Ray's own drain (preemption) with this deadline; null means the container's configured drain deadline.
 * now: stop without waiting for running tasks (their owners retry them elsewhere).
 */
export type StopHow = { how: 'drain'; deadlineSeconds: number | null; reason: DrainReason } | { how: 'now' };

/** Makes the agent match a target. Implemented over the real container (container-actuator.ts). */
export interface PolicyActuator {
  apply(target: PolicyTarget): Promise<void>;
}
