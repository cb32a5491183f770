import {
  ExitCode,
  type PolicyView,
  type PullProgress,
  rayCpusFor,
  type SandboxReport,
  type StatusDocument,
  type StatusView,
  type TunnelReport,
  type ViewPhase,
} from '@ray-agent/protocol';

/** The container as the engine reports it. */
export interface ContainerFacts {
  running: boolean;
  restarting: boolean;
  restartCount: number;
  exitCode: number | null;
  startedAt: string | null;
  /**
   * The kernel's OOM killer stopped a process in the container (the agent, or a Ray worker) since it was last
   * started by hand; Docker keeps it set across restarts by the restart policy.
   */
  oomKilled: boolean;
  /** The container's memory limit (HostConfig.Memory); null when it has none. */
  memoryBytes: number | null;
}

/** The tunnel container of the pair, as the engine reports it; undefined in direct mode. */
export interface TunnelFacts {
  /** Its container name, for the sentence that says where its log is. */
  name: string;
  container: { running: boolean; restarting: boolean; exitCode: number | null } | null;
}

/** The pair's tunnel for the view, from the controller's status: undefined when the agent runs alone (direct). */
export function tunnelFacts(
  status: { exists: boolean; paired: boolean; tunnel: TunnelFacts['container'] } | undefined,
  name: string,
): TunnelFacts | undefined {
  if (!status?.exists || !status.paired) return undefined;
  return { name, container: status.tunnel };
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
  /** The pair's tunnel container; undefined in direct mode (no tunnel). */
  tunnel?: TunnelFacts | undefined;
  /** The contribution policy's state (controller/src/policy); undefined or null when no policy runs. */
  policy?: PolicyView | null | undefined;
  /** Where the compute goes: the settings' cluster address and manager URL (empty: not configured). */
  cluster?: { address: string; managerUrl: string } | undefined;
  /** An agent image update under way or just finished. */
  update?: StatusView['update'] | undefined;
}

/** A container that has run this long without answering is unreachable, not "still starting". */
const STARTUP_GRACE_MS = 45_000;
const CRASH_LOOP_RESTARTS = 3;

/** What each of the agent's exit codes (protocol's ExitCode) means for the person, with what to change. */
export const EXIT_REASONS: Readonly<Partial<Record<ExitCode, string>>> = {
  [ExitCode.forced]:
    'The agent stopped unexpectedly or was stopped twice; it comes back as the same provider on the next start. See the log view for what it printed.',
  [ExitCode.badConfig]: 'The agent refused its configuration: check the cluster address and manager URL in Settings.',
  [ExitCode.enrollmentRejected]:
    'The manager rejected the enrollment token: paste a new token from the cluster operator in Settings.',
  [ExitCode.stateDirUnusable]:
    "The agent's state volume is not writable: remove the ray-agent-state volume and try again.",
  [ExitCode.tmpUnwritable]:
    "The agent cannot write /tmp, where Ray keeps its session files and logs: a container run by hand with a read-only root needs --tmpfs /tmp:rw,exec; for the app's own container (which has one), see the log view for why it was not writable.",
  [ExitCode.registrationFailed]:
    "The manager refused the registration: if its certificate is not trusted (a private CA), ask the cluster operator for the manager's CA; otherwise check the manager URL in Settings and the log view for the manager's answer.",
  [ExitCode.tunnelNamespaceGone]:
    'The tunnel container restarted, so the agent left to start again inside its new network; this fixes itself within seconds.',
};

function exitReason(code: number | null): string | undefined {
  return code === null ? undefined : EXIT_REASONS[code as ExitCode];
}

/** Out of memory, with what to change. `running`: the container lives on (a worker was killed, or it restarted). */
export function oomReason(memoryBytes: number | null, running: boolean): string {
  const limit = memoryBytes === null ? '' : ` (limit ${formatMemory(memoryBytes)})`;
  const what = running ? 'Part of the agent ran out of memory' : 'The agent ran out of memory';
  return `${what}${limit}: give it more memory in Settings, or run fewer tasks at once.`;
}

function formatMemory(bytes: number): string {
  const GiB = 1024 ** 3;
  if (bytes >= GiB) return `${Number((bytes / GiB).toFixed(1))} GiB`;
  return `${Math.round(bytes / 1024 ** 2)} MiB`;
}

/**
 * One view of the agent from everything known about it. Pure, so every state is tested; the order of the checks
 * is the order of what a person must fix first (no Docker, then a broken container, then the agent's own word).
 */
export function deriveView(inputs: ViewInputs): StatusView {
  const tunnel = tunnelView(inputs);
  const view = { ...policyPhase(viewOf(inputs), inputs), tunnel, ...transparency(inputs) };
  const { engine, container } = inputs;
  // A broken tunnel is the first thing to fix of an agent that otherwise looks fine: it has no way to the cluster.
  if (tunnel?.problem && view.detail === null && view.phase !== 'off') return { ...view, detail: tunnel.problem };
  // Docker's word that something in the running container was OOM-killed (a Ray worker, or the agent before the
  // restart policy brought it back), which the agent itself may not know.
  if (engine.kind === 'ready' && container?.running && container.oomKilled && view.detail === null)
    return { ...view, detail: oomReason(container.memoryBytes, true) };
  return view;
}

/** What runs now, where the compute goes, the policy and the update: shown as given, whatever the phase. */
function transparency(inputs: ViewInputs): Pick<StatusView, 'policy' | 'tasks' | 'cluster' | 'update' | 'sandbox'> {
  const status = inputs.agent?.kind === 'ok' ? inputs.agent.status : undefined;
  const running = inputs.container?.running === true && inputs.engine.kind === 'ready';
  const byName = running ? (status?.tasks.byName ?? []) : [];
  const cluster = inputs.cluster;
  return {
    policy: inputs.policy ?? null,
    // Most first, then by name, so the list does not reshuffle between polls with equal counts.
    tasks: [...byName].sort((a, b) => b.count - a.count || a.name.localeCompare(b.name)),
    cluster: cluster && cluster.address !== '' ? { address: cluster.address, managerUrl: cluster.managerUrl } : null,
    update: inputs.update ?? null,
    sandbox: running && status?.sandbox ? sandboxView(status.sandbox) : null,
  };
}

/** The sandbox line: what the agent's self-test found, and how many sandboxes run now. */
export function sandboxView(sandbox: SandboxReport): NonNullable<StatusView['sandbox']> {
  const slots = `${sandbox.slots} ${sandbox.slots === 1 ? 'slot' : 'slots'}`;
  const only = sandbox.mode === 'sandboxed';
  const rules = [only ? 'sandboxed work only' : '', sandbox.networkAllowed ? 'network allowed' : '']
    .filter(Boolean)
    .join(', ');
  const line =
    sandbox.state === 'ready'
      ? `ready: ${slots}, ${sandbox.running} running${rules ? `; ${rules}` : ''}`
      : sandbox.state === 'checking'
        ? `checking that a gVisor sandbox starts here${rules ? `; ${rules}` : ''}`
        : `unavailable${only ? ' (sandboxed work only, so this computer takes no work)' : ''}: ${sandbox.reason ?? 'no reason given'}`;
  return { state: sandbox.state, line };
}

/**
 * The policy stopped the agent (on battery, outside the schedule, the person's pause): with contributing still on,
 * a stopped container would otherwise read "Starting the agent". It is paused, and the sentence says until when.
 */
function policyPhase(view: StatusView, inputs: ViewInputs): StatusView {
  const policy = inputs.policy;
  if (policy?.mode !== 'paused' || inputs.engine.kind !== 'ready') return view;
  if (inputs.container?.running || view.phase === 'pulling' || view.phase === 'stopping') return view;
  if (view.phase !== 'starting' && view.phase !== 'off') return view;
  return { ...view, phase: 'off', headline: policy.sentence, detail: null };
}

function viewOf(inputs: ViewInputs): StatusView {
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
    const why = container.oomKilled ? oomReason(container.memoryBytes, false) : exitReason(container.exitCode);
    return {
      ...base,
      phase: 'crash-looping',
      headline: 'The agent keeps restarting',
      detail: why ?? lastError(agent) ?? 'See the log view for what the agent printed before it stopped.',
    };
  }
  if (!container?.running) {
    if (container?.oomKilled && contribute)
      return {
        ...base,
        phase: 'error',
        headline: 'The agent ran out of memory',
        detail: oomReason(container.memoryBytes, false),
      };
    if (container && container.exitCode !== null && container.exitCode !== 0 && contribute) {
      return {
        ...base,
        phase: 'error',
        headline: `The agent stopped (exit code ${container.exitCode})`,
        detail: exitReason(container.exitCode) ?? 'See the log view for what the agent printed.',
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
    limits: status
      ? {
          cpus: status.limits.cpus,
          memoryBytes: status.limits.memoryBytes,
          // An agent that does not say applies the same rule (Ray schedules whole CPUs).
          rayCpus: status.limits.rayCpus ?? rayCpusFor(status.limits.cpus),
        }
      : null,
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

type TunnelView = NonNullable<StatusView['tunnel']>;

/** The tunnel line: the tunnel container as Docker sees it first, then the tunnel's own report via the agent. */
export function tunnelView(inputs: ViewInputs): TunnelView | null {
  const { tunnel, engine, container, agent } = inputs;
  if (tunnel === undefined || engine.kind !== 'ready' || container === undefined) return null;
  const box = tunnel.container;
  const logs = `see \`docker logs ${tunnel.name}\` for why`;
  if (box === null)
    return {
      state: 'error',
      line: 'Tunnel: its container is missing',
      problem: `The tunnel container ${tunnel.name} is gone, so the agent has no network: turn contributing off and on again to make it anew.`,
    };
  if (box.restarting || (!box.running && box.exitCode !== null && box.exitCode !== 0))
    return {
      state: 'error',
      line: box.restarting
        ? 'Tunnel: its container keeps restarting'
        : `Tunnel: its container stopped (exit code ${box.exitCode})`,
      problem: `The tunnel container ${tunnel.name} does not stay up, so the agent has no network: ${logs}.`,
    };
  if (!box.running) return null;
  const report = agent?.kind === 'ok' ? agent.status.tunnel : undefined;
  if (report === undefined) return { state: 'starting', line: 'Tunnel: starting', problem: null };
  return reportView(report, inputs.now);
}

function reportView(report: TunnelReport, now: Date): TunnelView {
  const gateway = report.gatewayEndpoint === null ? 'the gateway' : `gateway ${report.gatewayEndpoint}`;
  switch (report.state) {
    case 'off':
      return { state: 'off', line: 'Tunnel: off, the cluster offers no gateway (joined directly)', problem: null };
    case 'starting':
      return { state: 'starting', line: 'Tunnel: starting', problem: null };
    case 'connecting':
      return { state: 'connecting', line: `Tunnel: connecting to ${gateway}`, problem: null };
    case 'up': {
      const parts = ['Tunnel: up'];
      if (report.lastHandshakeAt !== null)
        parts.push(`handshake ${secondsAgo(Date.parse(report.lastHandshakeAt), now)} ago`);
      // One unit for both directions, so they compare at a glance.
      const scale = Math.max(report.rxBytes, report.txBytes);
      parts.push(`${formatBytes(report.rxBytes, scale)} in / ${formatBytes(report.txBytes, scale)} out`);
      parts.push(report.address === null ? `via ${gateway}` : `${report.address} via ${gateway}`);
      return { state: 'up', line: parts.join(', '), problem: null };
    }
    case 'unreachable':
      return {
        state: 'unreachable',
        line: `Tunnel: cannot reach ${gateway}`,
        problem:
          report.problem ??
          `No answer from ${gateway} since the tunnel was configured: outgoing UDP may be blocked here, or the gateway refuses this computer's key.`,
      };
    case 'silent':
      return {
        state: 'silent',
        line: `Tunnel: nothing from ${gateway} lately`,
        problem: report.problem ?? `The tunnel was up, but nothing has arrived from ${gateway} for a while.`,
      };
    case 'error':
      return {
        state: 'error',
        line: 'Tunnel: cannot start',
        problem: report.problem ?? 'The tunnel container cannot make its network interface.',
      };
  }
}

/** "12 s", "3 min", "2 h": how long ago, in the unit a person reads at a glance. */
export function secondsAgo(at: number, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - at) / 1000));
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

/** Bytes in decimal units with one decimal ("1.2 MB", "512 B"), in the unit that suits `scale` ("0.8 MB"). */
export function formatBytes(bytes: number, scale = bytes): string {
  const units = ['kB', 'MB', 'GB', 'TB'];
  if (scale < 1000) return `${bytes} B`;
  let divisor = 1000;
  let unit = 0;
  while (scale / divisor >= 1000 && unit < units.length - 1) {
    divisor *= 1000;
    unit++;
  }
  return `${(bytes / divisor).toFixed(1)} ${units[unit]}`;
}
