import { type DrainReason, type PullProgress, STOP_STEPS_SECONDS, stopTimeoutSeconds } from '@ray-agent/protocol';
import type { AgentContainer, AgentSpec } from '../container/agent-container.js';
import { drainSeconds } from '../container/agent-container-spec.js';
import { AgentControlError } from '../container/agent-control.js';
import { throttleCpusFor } from '../container/live-limits.js';
import type { PolicyActuator, PolicyTarget, StopHow } from './policy-target.js';

/** apply(full) without a configured cluster: there is nothing to start. */
export class NotConfiguredError extends Error {
  constructor() {
    super(
      'no cluster is configured, so the agent cannot start: join a cluster first (the window, or `ray-agent join`)',
    );
    this.name = 'NotConfiguredError';
  }
}

export interface ContainerActuatorDeps {
  agent: AgentContainer;
  /** The current settings as a spec; undefined while no cluster is configured. */
  spec: () => AgentSpec | undefined;
  onProgress?: (progress: PullProgress) => void;
}

/** Between the two SIGTERMs of "stop now": two signals pending at once merge into one, and a merged pair drains. */
const SECOND_SIGNAL_MS = 500;
/** The exec that carries a drain waits for it: the deadline, then Ray's forced stop, plus room for a slow exec. */
const DRAIN_EXEC_MARGIN_S = STOP_STEPS_SECONDS.rayForceStop + 20;

/**
 * Makes the agent container match a policy target, idempotently (applying a target twice changes nothing, so a
 * restarted controller applies its current one again):
 * - full: up at the offered limits (creates or starts it via `up`; a throttle is lifted in place, no restart);
 * - throttled: the kernel's CPU limit drops to cpus * cpuFraction (at least 0.01) by `docker update`, at once,
 *   tasks keep running; a stopped container stays stopped (it starts throttled if started);
 * - stopped/drain: Ray's own drain with the deadline (null: the container's DRAIN_DEADLINE), then a graceful stop;
 * - stopped/now: SIGTERM, and a second one (the agent's "stop now": Ray is stopped at once, a last heartbeat goes
 *   out), then `docker stop` with the stop timeout of a zero drain, after which Docker kills what is left.
 * Applies run one at a time in order; one overtaken by a newer target before it began is skipped (the newer target
 * is what the container must match).
 */
export function containerActuator(deps: ContainerActuatorDeps): PolicyActuator {
  const { agent } = deps;
  const onProgress = deps.onProgress ?? (() => {});
  let queue: Promise<unknown> = Promise.resolve();
  let latest = 0;

  async function full(): Promise<void> {
    const spec = deps.spec();
    if (spec === undefined) throw new NotConfiguredError();
    // `up` first: it refuses a container changed by hand (DriftError), which must not be updated either.
    await agent.up(spec, onProgress);
    // `up` keeps a throttle it finds (it cannot tell whose it is); a container it just created has none.
    await agent.applyLimits({ cpus: spec.cpus, memoryBytes: spec.memoryBytes, throttleCpus: null });
  }

  async function throttled(cpuFraction: number): Promise<void> {
    if (!Number.isFinite(cpuFraction) || cpuFraction <= 0 || cpuFraction > 1)
      throw new TypeError(`policy target: cpuFraction must be above 0 and at most 1, got ${cpuFraction} (e.g. 0.1)`);
    const spec = deps.spec();
    // Not configured: the app runs no agent, so there is nothing to step aside from.
    if (spec === undefined) return;
    await agent.applyLimits({
      cpus: spec.cpus,
      memoryBytes: spec.memoryBytes,
      throttleCpus: throttleCpusFor(spec.cpus, cpuFraction),
    });
  }

  async function stopped(stop: StopHow): Promise<void> {
    const status = await agent.status();
    if (!status.exists) return;
    if (!status.running && !status.restarting) {
      await agent.down();
      return;
    }
    if (stop.how === 'now') {
      if (await agent.signal('SIGTERM')) {
        await new Promise((resolve) => setTimeout(resolve, SECOND_SIGNAL_MS));
        await agent.signal('SIGTERM');
      }
      await agent.down({ timeoutSeconds: stopTimeoutSeconds(0) });
      return;
    }
    const spec = deps.spec();
    const deadline =
      stop.deadlineSeconds ??
      (spec !== undefined ? drainSeconds(spec) : ((await agent.drainDeadlineSeconds()) ?? drainSeconds({})));
    await drain(deadline, stop.reason);
    // Ray has stopped (or the agent could not drain it itself): the agent's own stop is short now; if it could not
    // be asked, this SIGTERM drains with the container's own deadline instead.
    await agent.down();
  }

  /** Ok or not, the container stops next; the agent's log and last status say how the drain went. */
  async function drain(deadlineSeconds: number, reason: DrainReason): Promise<void> {
    try {
      await agent.control(
        { command: 'drain', deadlineSeconds, reason },
        { timeoutMs: (deadlineSeconds + DRAIN_EXEC_MARGIN_S) * 1000 },
      );
    } catch (error) {
      // An older image (no control bundle), a stopped or unresponsive agent: the stop's SIGTERM drains instead.
      if (!(error instanceof AgentControlError)) throw error;
    }
  }

  function run(target: PolicyTarget): Promise<void> {
    switch (target.kind) {
      case 'full':
        return full();
      case 'throttled':
        return throttled(target.cpuFraction);
      case 'stopped':
        return stopped(target.stop);
    }
  }

  return {
    apply(target: PolicyTarget): Promise<void> {
      const seq = ++latest;
      const next = queue.then(() => (seq === latest ? run(target) : undefined));
      queue = next.catch(() => undefined);
      return next;
    },
  };
}
