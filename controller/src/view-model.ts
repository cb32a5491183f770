import type { PullProgress, StatusDocument, StatusView, ViewPhase } from '@ray-agent/protocol';

/** The container as the engine reports it. */
export interface ContainerFacts {
  running: boolean;
  restarting: boolean;
  restartCount: number;
  exitCode: number | null;
  startedAt: string | null;
}

/** The engine as the controller sees it. */
export type EngineFacts =
  | { kind: 'ready' }
  | { kind: 'not-installed' | 'not-running' | 'permission-denied'; message: string; fix: string };

/** What the status endpoint said, or why it said nothing useful. */
export type AgentFacts =
  | { kind: 'ok'; status: StatusDocument }
  | { kind: 'unreachable'; error: string }
  | { kind: 'outdated'; schemaVersion: unknown };

export interface ViewInputs {
  contribute: boolean;
  engine: EngineFacts;
  container: ContainerFacts | undefined;
  agent: AgentFacts | undefined;
  pull: PullProgress | undefined;
  stopping: boolean;
  now: Date;
}

/** A container that has run this long without answering is unreachable, not "still starting". */
const STARTUP_GRACE_MS = 45_000;
const CRASH_LOOP_RESTARTS = 3;

const EXIT_REASONS: Record<number, string> = {
  2: 'The agent refused its configuration: check the cluster address and manager URL in Settings.',
  3: 'The manager rejected the enrollment token: paste a new token from the cluster operator in Settings.',
  5: "The agent's state volume is not writable: remove the ray-agent-state volume and try again.",
};

/**
 * One view of the agent from everything known about it. Pure, so every state is tested; the order of the checks
 * is the order of what a person must fix first (no Docker, then a broken container, then the agent's own word).
 */
export function deriveView(inputs: ViewInputs): StatusView {
  const base = baseView(inputs);
  const { engine, container, agent, pull, contribute, stopping, now } = inputs;
  if (engine.kind !== 'ready') {
    const phase: ViewPhase =
      engine.kind === 'not-installed'
        ? 'docker-missing'
        : engine.kind === 'not-running'
          ? 'docker-stopped'
          : 'docker-denied';
    return { ...base, phase, headline: engine.message, detail: engine.fix };
  }
  if (pull && !pull.done && !pull.error) {
    const percent = pull.fraction === null ? '' : ` (${Math.round(pull.fraction * 100)}%)`;
    return { ...base, phase: 'pulling', headline: `Downloading the agent${percent}`, detail: pull.image };
  }
  if (pull?.error && !container?.running)
    return { ...base, phase: 'error', headline: 'The agent image could not be downloaded', detail: pull.error };
  if (stopping) return { ...base, phase: 'stopping', headline: 'Stopping: letting running tasks finish', detail: null };
  if (container && (container.restarting || (container.restartCount >= CRASH_LOOP_RESTARTS && !isHealthy(agent)))) {
    const why = container.exitCode !== null ? EXIT_REASONS[container.exitCode] : undefined;
    return {
      ...base,
      phase: 'crash-looping',
      headline: 'The agent keeps restarting',
      detail: why ?? lastError(agent) ?? 'See the log view for what the agent printed before it stopped.',
    };
  }
  if (!container?.running) {
    if (container && container.exitCode !== null && container.exitCode !== 0 && contribute) {
      return {
        ...base,
        phase: 'error',
        headline: `The agent stopped (exit code ${container.exitCode})`,
        detail: EXIT_REASONS[container.exitCode] ?? 'See the log view for what the agent printed.',
      };
    }
    return contribute
      ? { ...base, phase: 'starting', headline: 'Starting the agent', detail: null }
      : { ...base, phase: 'off', headline: 'Not contributing', detail: null };
  }
  if (!agent || agent.kind === 'unreachable') {
    const startedAt = container.startedAt ? Date.parse(container.startedAt) : now.getTime();
    if (now.getTime() - startedAt < STARTUP_GRACE_MS)
      return { ...base, phase: 'starting', headline: 'Starting the agent', detail: null };
    return {
      ...base,
      phase: 'unreachable',
      headline: "The agent's status cannot be read",
      detail: `The container is running but its status endpoint does not answer${agent ? ` (${agent.error})` : ''}. Restart contributing, or check the log view.`,
    };
  }
  if (agent.kind === 'outdated') {
    return {
      ...base,
      phase: 'outdated',
      headline: 'The agent is a different version than this app',
      detail: `It reports status schema ${String(agent.schemaVersion)}; update the app or the agent image so they match.`,
    };
  }
  return fromAgent(base, agent.status);
}

function fromAgent(base: StatusView, status: StatusDocument): StatusView {
  const error = status.lastError?.message ?? null;
  switch (status.state) {
    case 'contributing':
      return {
        ...base,
        phase: 'contributing',
        headline:
          status.tasks.running === 1
            ? 'Contributing: 1 task running'
            : `Contributing: ${status.tasks.running} tasks running`,
        detail: status.heartbeat.state === 'healthy' ? null : error,
      };
    case 'starting':
    case 'connecting':
      return { ...base, phase: 'starting', headline: 'Joining the cluster', detail: error };
    case 'reconnecting':
      return { ...base, phase: 'reconnecting', headline: 'Reconnecting to the cluster', detail: error };
    case 'draining':
      return { ...base, phase: 'draining', headline: 'Stopping: letting running tasks finish', detail: null };
    case 'stopped':
      return { ...base, phase: 'stopping', headline: 'Stopped', detail: null };
    case 'error':
      return { ...base, phase: 'error', headline: 'The agent needs attention', detail: error ?? 'See the log view.' };
  }
}

function baseView(inputs: ViewInputs): StatusView {
  const status = inputs.agent?.kind === 'ok' ? inputs.agent.status : undefined;
  return {
    phase: 'off',
    headline: '',
    detail: null,
    contributing: status?.state === 'contributing',
    registration: {
      state: status?.registration.state ?? 'unregistered',
      providerId: status?.registration.providerId ?? null,
    },
    heartbeat: {
      healthy: status?.heartbeat.state === 'healthy',
      lastSuccessAt: status?.heartbeat.lastSuccessAt ?? null,
      failingSince: status?.heartbeat.failingSince ?? null,
      consecutiveFailures: status?.heartbeat.consecutiveFailures ?? 0,
    },
    runningTasks: status?.tasks.running ?? 0,
    limits: status ? { cpus: status.limits.cpus, memoryBytes: status.limits.memoryBytes } : null,
    agentVersion: status?.agent.version ?? null,
    updatedAt: inputs.now.toISOString(),
  };
}

function isHealthy(agent: AgentFacts | undefined): boolean {
  return agent?.kind === 'ok' && agent.status.state === 'contributing';
}

function lastError(agent: AgentFacts | undefined): string | undefined {
  return agent?.kind === 'ok' ? agent.status.lastError?.message : undefined;
}
