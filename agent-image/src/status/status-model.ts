import type {
  AgentState,
  HeartbeatHealth,
  RayNodeState,
  RegistrationState,
  SandboxReport,
  StatusDocument,
  TunnelReport,
} from '@ray-agent/protocol';

type Limits = StatusDocument['limits'];

interface TimedMessage {
  at: string;
  message: string;
}

const MAX_RECENT = 20;

/**
 * The agent's state, owned in one place. The supervisor writes facts (Ray joined, a heartbeat failed...); the
 * status endpoint, the metrics and the heartbeat read the same snapshot, so they can never disagree.
 */
export class StatusModel {
  private state: AgentState = 'starting';
  private stateSince: Date;
  private readonly startedAt: Date;
  ray = {
    state: 'not_started' as RayNodeState,
    nodeIp: null as string | null,
    version: 'unknown',
    pythonVersion: 'unknown',
    clusterVersion: null as string | null,
    clusterPythonVersion: null as string | null,
    joinedAt: null as Date | null,
    restarts: 0,
    recentErrors: [] as TimedMessage[],
  };
  registration = {
    state: 'unregistered' as RegistrationState,
    providerId: null as string | null,
    registeredAt: null as string | null,
  };
  heartbeat = {
    state: 'idle' as HeartbeatHealth,
    intervalSeconds: 10,
    lastSuccessAt: null as Date | null,
    lastAttemptAt: null as Date | null,
    consecutiveFailures: 0,
    failingSince: null as Date | null,
    nextAttemptAt: null as Date | null,
    serverClockSkewSeconds: null as number | null,
  };
  runningTasks = 0;
  /** What runs now by worker title, the most frequent first (at most 50), and tasks seen finishing since start. */
  tasksByName: { name: string; count: number }[] = [];
  tasksCompleted = 0;
  /** The WireGuard tunnel (`off` in direct mode); unset until the supervisor has looked. */
  tunnel: TunnelReport | undefined;
  /** Ray's gVisor sandboxes: checking until the self-test has answered. */
  sandbox: SandboxReport = {
    state: 'checking',
    reason: null,
    kernel: null,
    startSeconds: null,
    slots: 0,
    running: 0,
    mode: 'any',
    networkAllowed: false,
  };
  usage = { cpuPercent: 0, memoryBytes: 0 };
  private warnings: string[] = [];
  private lastError: { code: string; message: string; at: string } | null = null;

  constructor(
    readonly agentVersion: string,
    /** The GCS the node joins: RAY_HEAD's, or the head's over the overlay. */
    public gcsAddress: string,
    readonly managerUrl: string,
    public limits: Limits,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.startedAt = now();
    this.stateSince = this.startedAt;
  }

  get current(): AgentState {
    return this.state;
  }

  /** Called on every state change, e.g. to log it. */
  onStateChange: (from: AgentState, to: AgentState) => void = () => {};

  setState(state: AgentState): void {
    if (state === this.state) return;
    const from = this.state;
    this.state = state;
    this.stateSince = this.now();
    this.onStateChange(from, state);
  }

  fail(code: string, message: string): void {
    this.lastError = { code, message: message.slice(0, 500), at: this.now().toISOString() };
  }

  clearError(code?: string): void {
    if (code === undefined || this.lastError?.code === code) this.lastError = null;
  }

  get error() {
    return this.lastError;
  }

  warn(message: string): void {
    if (!this.warnings.includes(message)) this.warnings = [...this.warnings, message].slice(-MAX_RECENT);
  }

  rayError(message: string): void {
    this.ray.recentErrors.push({ at: this.now().toISOString(), message: message.slice(0, 500) });
    if (this.ray.recentErrors.length > MAX_RECENT) this.ray.recentErrors.shift();
  }

  snapshot(): StatusDocument {
    const now = this.now();
    const iso = (date: Date | null) => (date ? date.toISOString() : null);
    return {
      schemaVersion: 1,
      state: this.state,
      stateSince: this.stateSince.toISOString(),
      agent: {
        version: this.agentVersion,
        startedAt: this.startedAt.toISOString(),
        uptimeSeconds: Math.max(0, (now.getTime() - this.startedAt.getTime()) / 1000),
      },
      ray: {
        state: this.ray.state,
        gcsAddress: this.gcsAddress,
        nodeIp: this.ray.nodeIp,
        version: this.ray.version,
        pythonVersion: this.ray.pythonVersion,
        clusterVersion: this.ray.clusterVersion,
        clusterPythonVersion: this.ray.clusterPythonVersion,
        joinedAt: iso(this.ray.joinedAt),
        restarts: this.ray.restarts,
        recentErrors: [...this.ray.recentErrors],
      },
      registration: { ...this.registration, managerUrl: this.managerUrl },
      heartbeat: {
        state: this.heartbeat.state,
        intervalSeconds: this.heartbeat.intervalSeconds,
        lastSuccessAt: iso(this.heartbeat.lastSuccessAt),
        lastAttemptAt: iso(this.heartbeat.lastAttemptAt),
        consecutiveFailures: this.heartbeat.consecutiveFailures,
        failingSince: iso(this.heartbeat.failingSince),
        nextAttemptAt: iso(this.heartbeat.nextAttemptAt),
        serverClockSkewSeconds: this.heartbeat.serverClockSkewSeconds,
      },
      tasks: {
        running: this.runningTasks,
        byName: this.tasksByName.map((entry) => ({ ...entry })),
        completed: this.tasksCompleted,
      },
      limits: { ...this.limits },
      ...(this.tunnel ? { tunnel: { ...this.tunnel } } : {}),
      sandbox: { ...this.sandbox },
      usage: { ...this.usage },
      warnings: [...this.warnings],
      lastError: this.lastError,
    };
  }
}
