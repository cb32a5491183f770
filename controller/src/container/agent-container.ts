import {
  AGENT_ENV,
  type AgentControlReply,
  type AgentControlRequest,
  type OfferableLimits,
  type PullProgress,
  STATE_DIR,
  stopTimeoutSeconds,
} from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { type EnsureImageResult, ensureImage, type PullPolicy } from '../engine/image-pull.js';
import { offerableLimits } from '../engine/offerable-limits.js';
import {
  type AgentSpec,
  CONTAINER_STATUS_PORT,
  configHash,
  createOptions,
  DEFAULT_NAME,
  drainSeconds,
  envTakesSecrets,
  LABEL_CONFIG_HASH,
  LABEL_INSTANCE,
  LABEL_MANAGED,
  LABEL_ROLE,
  specName,
  spillVolumeName,
  stateVolumeName,
  tunnelName,
  tunnelVolumeName,
  usesTunnel,
  validateSpec,
} from './agent-container-spec.js';
import { AgentControlError, agentControl } from './agent-control.js';
import { containerDrift, type DriftItem } from './container-drift.js';
import { type LogFollow, type LogOptions, type LogSource, readLogs } from './container-logs.js';
import {
  applyLiveLimits,
  type LiveLimitsOutcome,
  type LiveLimitsRequest,
  limitsHold,
  limitsToReconcile,
  readLiveLimits,
} from './live-limits.js';
import { readDelivered, secretsArchive, secretsToWrite } from './state-volume-secrets.js';
import {
  TUNNEL_ROLE,
  TUNNEL_STOP_SECONDS,
  TUNNEL_VOLUME_ROLE,
  tunnelConfigHash,
  tunnelCreateOptions,
} from './tunnel-container-spec.js';

export type { EnsureImageResult, PullPolicy } from '../engine/image-pull.js';
export type { AgentSpec } from './agent-container-spec.js';
export type { DriftItem } from './container-drift.js';
export type { LogFollow, LogOptions, LogSource } from './container-logs.js';
export type { LiveLimitsOutcome, LiveLimitsRequest } from './live-limits.js';

export type UpOutcome = 'created' | 'adopted' | 'replaced';

export interface UpResult {
  outcome: UpOutcome;
  id: string;
  /**
   * A secret of the spec (a new token, a new CA) was written into the state volume. An adopted container that was
   * running is restarted gracefully for it, since the agent reads those files at start.
   */
  secretsDelivered: boolean;
  /** Things that went well enough but a person should know, e.g. "could not pull; using the local copy". */
  warnings: string[];
  /**
   * Present when an adopted container's CPU or memory limits were changed in place (no restart). With
   * `resizedLive: false` the kernel's limits hold but Ray schedules by its old CPU count (its warning is in
   * `warnings`); a restart makes Ray follow, and is the caller's to choose (`down()` then `up()`: it drains).
   */
  liveLimits?: LiveLimitsOutcome;
}

export interface UpOptions {
  /** 'missing' (default): pull only when the image is not here. 'always': pull, fall back to a local copy. */
  pull?: PullPolicy;
  /** The person has seen `drift()` and agreed to replace a hand-changed container. */
  confirmDrift?: boolean;
}

export interface DownOptions {
  /** Grace period before SIGKILL; default: the container's own StopTimeout (`stopTimeoutSeconds` of its drain). */
  timeoutSeconds?: number;
  /** Remove the container too (default: keep it, so `up` adopts it). */
  remove?: boolean;
  /** Remove the state volume as well (install ID, credentials): this machine is forgotten. Implies remove. */
  removeState?: boolean;
}

export interface DownResult {
  existed: boolean;
  wasRunning: boolean;
  removed: boolean;
}

export interface AgentStatus {
  exists: boolean;
  id: string | null;
  running: boolean;
  restarting: boolean;
  restartCount: number;
  exitCode: number | null;
  /** The OOM killer stopped a process in it since it was last started by hand (kept across policy restarts). */
  oomKilled: boolean;
  /** Its memory limit (HostConfig.Memory), null without one. */
  memoryBytes: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** The image's HEALTHCHECK verdict: starting, healthy, unhealthy; null before the first or without one. */
  health: string | null;
  image: string | null;
  configHash: string | null;
  hostStatusPort: number | null;
  /** The agent runs in a tunnel container's network namespace (the pair), not alone on a Docker network. */
  paired: boolean;
  /** The tunnel container of the pair; null when there is none (direct mode, or it was removed). */
  tunnel: TunnelContainerStatus | null;
}

/** The tunnel container as the engine reports it. */
export interface TunnelContainerStatus {
  id: string;
  running: boolean;
  restarting: boolean;
  restartCount: number;
  exitCode: number | null;
  startedAt: string | null;
}

/** The agent could not join its tunnel container's network namespace: the tunnel does not stay up. */
export class TunnelDownError extends Error {
  constructor(
    readonly tunnelContainer: string,
    exitCode: number | null,
  ) {
    super(
      `the tunnel container ${tunnelContainer} is not running${exitCode === null ? '' : ` (it exited with code ${exitCode})`}, so the agent cannot start in its network; see \`docker logs ${tunnelContainer}\``,
    );
    this.name = 'TunnelDownError';
  }
}

/** The existing container was changed by hand; replacing it needs the person's yes. */
export class DriftError extends Error {
  constructor(
    readonly containerName: string,
    readonly drift: DriftItem[],
  ) {
    super(
      `the container ${containerName} was changed outside this app (${drift.map((item) => item.detail).join('; ')}); confirm to replace it`,
    );
    this.name = 'DriftError';
  }
}

const NEVER_STARTED = '0001-01-01T00:00:00Z';
/** How long `up` lets a just-started tunnel container come up before the agent joins its namespace. */
const TUNNEL_START_WAIT_MS = 10_000;

/**
 * The controller of THE agent (one per name): its container and, in the pair, its tunnel container. Create, adopt,
 * replace, stop, inspect, read logs; the pair always together.
 */
export class AgentContainer {
  readonly name: string;
  private queue: Promise<unknown> = Promise.resolve();
  /** Operations queued or running: a rejoin waits for none of them (an `up` may be pulling for minutes). */
  private pending = 0;

  constructor(
    private readonly docker: Dockerode,
    options: { name?: string } = {},
  ) {
    this.name = options.name ?? DEFAULT_NAME;
  }

  /** The tunnel container's name in the pair. */
  get tunnelName(): string {
    return tunnelName(this.name);
  }

  ensureImage(
    image: string,
    onProgress: (progress: PullProgress) => void,
    options: { pull?: PullPolicy } = {},
  ): Promise<EnsureImageResult> {
    return ensureImage(this.docker, image, onProgress, options);
  }

  /** Our container: labelled managed, role agent and this instance name. */
  find(): Promise<Dockerode.ContainerInfo | null> {
    return this.findRole('agent', this.name);
  }

  /** Our tunnel container: labelled managed, role tunnel and this instance name. */
  findTunnel(): Promise<Dockerode.ContainerInfo | null> {
    return this.findRole(TUNNEL_ROLE, tunnelName(this.name));
  }

  /**
   * Makes the agent run as `spec` says: adopts a matching pair (starting it if stopped), replaces what differs
   * (graceful stop first, the agent before its tunnel; the volumes stay), or creates it. The tunnel starts first.
   */
  up(spec: AgentSpec, onProgress: (progress: PullProgress) => void = () => {}, options: UpOptions = {}) {
    return this.serial(() => this.upNow(spec, onProgress, options));
  }

  /** Stops the agent gracefully (it drains), then its tunnel; keeps the containers unless asked. Twice is fine. */
  down(options: DownOptions = {}) {
    return this.serial(() => this.downNow(options));
  }

  /**
   * A tunnel container restarted under the agent (its restart policy, or by hand) left the agent in a namespace
   * with no network: restarts the agent into the new one. Also starts an agent that could not join a tunnel that
   * was down. True when it acted. Only for a pair that should run; it never starts a pair someone stopped.
   */
  rejoinTunnel(): Promise<boolean> {
    // Busy: the running `up` or `down` settles the pair itself.
    if (this.pending > 0) return Promise.resolve(false);
    return this.serial(async () => {
      const [agent, tunnel] = await Promise.all([this.inspect(), this.inspectTunnel()]);
      const action = rejoinAction(agent, tunnel);
      if (agent === null || action === null) return false;
      const container = this.docker.getContainer(agent.Id);
      if (action === 'restart')
        await container.restart({ t: stopTimeoutOf(agent) ?? stopTimeoutSeconds(AGENT_ENV.DRAIN_DEADLINE.default) });
      else await startContainer(container);
      return true;
    });
  }

  async status(): Promise<AgentStatus> {
    const [inspect, tunnel] = await Promise.all([this.inspect(), this.inspectTunnel()]);
    const tunnelStatus = tunnel === null ? null : tunnelStatusOf(tunnel);
    if (inspect === null)
      return {
        exists: false,
        id: null,
        running: false,
        restarting: false,
        restartCount: 0,
        exitCode: null,
        oomKilled: false,
        memoryBytes: null,
        startedAt: null,
        finishedAt: null,
        health: null,
        image: null,
        configHash: null,
        hostStatusPort: null,
        paired: false,
        tunnel: tunnelStatus,
      };
    const state = inspect.State;
    // In the pair the tunnel publishes the port, since it owns the namespace.
    const paired = inspect.HostConfig.NetworkMode?.startsWith('container:') === true;
    const publisher = paired && tunnel !== null ? tunnel : inspect;
    const binding = publisher.HostConfig.PortBindings?.[`${CONTAINER_STATUS_PORT}/tcp`]?.[0] as
      | { HostPort?: string }
      | undefined;
    const hostPort = Number(binding?.HostPort);
    return {
      exists: true,
      id: inspect.Id,
      running: state.Running,
      restarting: state.Restarting,
      restartCount: inspect.RestartCount,
      exitCode: state.StartedAt === NEVER_STARTED ? null : state.ExitCode,
      oomKilled: state.OOMKilled,
      memoryBytes: inspect.HostConfig.Memory ? inspect.HostConfig.Memory : null,
      startedAt: state.StartedAt === NEVER_STARTED ? null : state.StartedAt,
      finishedAt: state.FinishedAt === NEVER_STARTED ? null : state.FinishedAt,
      health: state.Health?.Status ?? null,
      image: inspect.Config.Image,
      configHash: inspect.Config.Labels?.[LABEL_CONFIG_HASH] ?? null,
      hostStatusPort: Number.isInteger(hostPort) && hostPort > 0 ? hostPort : null,
      paired,
      tunnel: tunnelStatus,
    };
  }

  /** Differences from what `up(spec)` would create that a person must confirm before replacement; [] if none. */
  async drift(spec: AgentSpec): Promise<DriftItem[]> {
    const [inspect, tunnel] = await Promise.all([this.inspect(), this.inspectTunnel()]);
    return pairDrift(inspect, tunnel, spec);
  }

  async logs(options: LogOptions, onLine: (line: string, source: LogSource) => void): Promise<LogFollow> {
    const info = await this.find();
    if (info === null) throw new Error(`there is no ${this.name} container, so no log`);
    return readLogs(this.docker.getContainer(info.Id), options, onLine);
  }

  limits(): Promise<OfferableLimits> {
    return offerableLimits(this.docker);
  }

  /**
   * Makes the agent hold `limits` in place at once (see applyLiveLimits), running or stopped (a stopped one stays
   * stopped). Idempotent: null when there is no agent container or it holds them already. Not queued behind
   * `up`/`down` on purpose: stepping aside must not wait for a pull.
   */
  async applyLimits(limits: LiveLimitsRequest): Promise<LiveLimitsOutcome | null> {
    const inspect = await this.inspect();
    if (inspect === null) return null;
    const recorded = await readLiveLimits(this.docker.getContainer(inspect.Id));
    if (limitsHold(inspect.HostConfig, limits, recorded)) return null;
    return applyLiveLimits(this.docker, inspect.Name.replace(/^\//, ''), limits);
  }

  /** The drain deadline the agent container was made with (its DRAIN_DEADLINE); null without a container. */
  async drainDeadlineSeconds(): Promise<number | null> {
    const inspect = await this.inspect();
    if (inspect === null) return null;
    const prefix = `${AGENT_ENV.DRAIN_DEADLINE.name}=`;
    const value = Number((inspect.Config.Env ?? []).find((entry) => entry.startsWith(prefix))?.slice(prefix.length));
    return Number.isInteger(value) && value >= 0 ? value : AGENT_ENV.DRAIN_DEADLINE.default;
  }

  /** Asks the running agent (see agentControl); rejects with AgentControlError when it cannot be asked. */
  async control(request: AgentControlRequest, options: { timeoutMs?: number } = {}): Promise<AgentControlReply> {
    const info = await this.find();
    if (info === null) throw new AgentControlError('not-running', `there is no ${this.name} container to ask`);
    return agentControl(this.docker, info.Id, request, options);
  }

  /** Sends a signal to the running agent (SIGTERM: drain; a second one: stop now). False when it is not running. */
  async signal(signal: 'SIGTERM' | 'SIGINT'): Promise<boolean> {
    const info = await this.find();
    if (info === null) return false;
    try {
      await this.docker.getContainer(info.Id).kill({ signal });
      return true;
    } catch (error) {
      const status = statusOf(error);
      if (status === 404 || status === 409) return false; // gone, or not running
      throw error;
    }
  }

  private async upNow(
    spec: AgentSpec,
    onProgress: (progress: PullProgress) => void,
    options: UpOptions,
  ): Promise<UpResult> {
    validateSpec(spec);
    if (specName(spec) !== this.name)
      throw new Error(`this controller manages "${this.name}", not "${specName(spec)}": use another AgentContainer`);
    const warnings: string[] = [];
    const image = await this.ensureImage(spec.image, onProgress, { pull: options.pull ?? 'missing' });
    if (image.warning !== null) warnings.push(image.warning);

    const paired = usesTunnel(spec);
    const [inspect, tunnel] = await Promise.all([this.inspect(), this.inspectTunnel()]);
    // Nothing is touched before the person confirmed what someone changed by hand, in either container.
    const handMade = pairDrift(inspect, tunnel, spec).filter(
      (item) => item.kind !== 'image' || item.claimsCurrent === true,
    );
    if (handMade.length > 0 && options.confirmDrift !== true)
      throw new DriftError(this.name, handMade.map(withoutClaim));

    const keepTunnel =
      paired &&
      tunnel !== null &&
      tunnel.Config.Labels?.[LABEL_CONFIG_HASH] === tunnelConfigHash(spec) &&
      containerDrift(tunnel, spec, 'tunnel').length === 0;
    // An agent stays only in the namespace of the tunnel that stays: a new tunnel is a new namespace.
    const keepAgent =
      inspect !== null &&
      inspect.Config.Labels?.[LABEL_CONFIG_HASH] === configHash(spec) &&
      containerDrift(inspect, spec).length === 0 &&
      envTakesSecrets(inspect.Config.Env ?? [], spec) &&
      (!paired || (keepTunnel && tunnel !== null && joins(inspect, tunnel)));

    let outcome: UpOutcome = 'created';
    // Replacing: the agent stops first (it drains), then its tunnel.
    if (inspect !== null && !keepAgent) {
      await this.stopAndRemove(inspect, stopTimeoutOf(inspect) ?? stopTimeoutFor(spec));
      outcome = 'replaced';
    }
    if (tunnel !== null && !keepTunnel) {
      await this.stopAndRemove(tunnel, TUNNEL_STOP_SECONDS);
      if (inspect === null) outcome = 'replaced';
    }

    await this.ensureVolume(stateVolumeName(this.name), 'agent-state');
    await this.ensureVolume(spillVolumeName(this.name), 'agent-spill');
    let tunnelId: string | null = null;
    let tunnelStarted = false;
    if (paired) {
      await this.ensureVolume(tunnelVolumeName(this.name), TUNNEL_VOLUME_ROLE);
      if (keepTunnel && tunnel !== null) {
        tunnelId = tunnel.Id;
        const container = this.docker.getContainer(tunnel.Id);
        if (tunnel.State.Paused) await container.unpause();
        if (!tunnel.State.Running && !tunnel.State.Restarting) {
          await startContainer(container);
          tunnelStarted = true;
        }
      } else {
        tunnelId = await this.createTunnel(spec);
        tunnelStarted = true;
      }
      if (tunnelStarted) await this.waitForTunnel(tunnelId);
    }

    if (keepAgent && inspect !== null) {
      const container = this.docker.getContainer(inspect.Id);
      // Same container whether or not this caller has the token: a new secret goes into its volume.
      const secretsDelivered = await deliverSecrets(container, spec);
      if (inspect.State.Paused) await container.unpause();
      // New CPU or memory figures are applied in place; a throttle the policy set stays (see limitsToReconcile).
      const reconcile = limitsToReconcile(inspect.HostConfig, spec, await readLiveLimits(container));
      let liveLimits: LiveLimitsOutcome | undefined;
      if (reconcile !== null) {
        liveLimits = await applyLiveLimits(this.docker, inspect.Name.replace(/^\//, ''), reconcile);
        if (liveLimits.warning !== null) warnings.push(liveLimits.warning);
      }
      const result: UpResult = {
        outcome: 'adopted' as const,
        id: inspect.Id,
        secretsDelivered,
        warnings,
        ...(liveLimits !== undefined ? { liveLimits } : {}),
      };
      // Restarting: the restart policy starts it again by itself, and it reads the new files then.
      if (inspect.State.Restarting && !tunnelStarted) return result;
      const staleNetns = tunnel !== null && startedAt(tunnel) > startedAt(inspect);
      if (!inspect.State.Running) await this.startAgent(container, spec);
      else if (secretsDelivered || tunnelStarted || staleNetns)
        await container.restart({ t: stopTimeoutOf(inspect) ?? stopTimeoutFor(spec) });
      return result;
    }
    const { id, secretsDelivered } = await this.create(spec);
    return { outcome, id, secretsDelivered, warnings };
  }

  private async createTunnel(spec: AgentSpec): Promise<string> {
    const name = tunnelName(this.name);
    let container: Dockerode.Container;
    try {
      container = await this.docker.createContainer(tunnelCreateOptions(spec));
    } catch (error) {
      if (statusOf(error) === 409)
        throw new Error(
          `a container named "${name}" exists that this app did not create; rename it (docker rename ${name} ${name}-old) or remove it, then try again`,
        );
      throw error;
    }
    try {
      await container.start();
    } catch (error) {
      await removeContainer(container).catch(() => undefined);
      throw portTaken(error, spec) ?? error;
    }
    return container.id;
  }

  /** A tunnel that exits at once (no /dev/net/tun, an image without the tunnel) is reported, not joined blindly. */
  private async waitForTunnel(id: string): Promise<void> {
    const deadline = Date.now() + TUNNEL_START_WAIT_MS;
    for (;;) {
      const { State } = await this.docker.getContainer(id).inspect();
      if (State.Running && !State.Restarting) return;
      if (Date.now() > deadline) return; // the agent's start says what is wrong
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  private async startAgent(container: Dockerode.Container, spec: AgentSpec): Promise<void> {
    try {
      await startContainer(container);
    } catch (error) {
      if (!usesTunnel(spec)) throw error;
      // Docker refuses to start a container in the namespace of one that is not running.
      const tunnel = await this.inspectTunnel();
      if (tunnel?.State.Running && !tunnel.State.Restarting) throw error;
      throw new TunnelDownError(tunnelName(this.name), tunnel === null ? null : tunnelStatusOf(tunnel).exitCode);
    }
  }

  private async create(spec: AgentSpec): Promise<{ id: string; secretsDelivered: boolean }> {
    let container: Dockerode.Container;
    try {
      container = await this.docker.createContainer(createOptions(spec));
    } catch (error) {
      if (statusOf(error) === 409)
        throw new Error(
          `a container named "${this.name}" exists that this app did not create; rename it (docker rename ${this.name} ${this.name}-old) or remove it, then try again`,
        );
      throw error;
    }
    let secretsDelivered: boolean;
    try {
      // The secrets go into the state volume of the created, not yet started container: putArchive into a volume
      // path works with ReadonlyRootfs (checked on Docker 20.10), the files get the tar's owner and mode, and
      // nothing of the token shows in `docker inspect`. A kept volume may hold them already (and the agent may have
      // removed a token it used): only what is new is written.
      secretsDelivered = await deliverSecrets(container, spec);
      await this.startAgent(container, spec);
    } catch (error) {
      // The pair stays when only its tunnel is down: the tunnel's restart policy keeps trying, the next `up` (or
      // rejoinTunnel) starts the agent, and `docker logs` of the tunnel says why.
      if (error instanceof TunnelDownError) throw error;
      // A container that never started would be adopted and fail the same way next time: remove it.
      await removeContainer(container).catch(() => undefined);
      throw portTaken(error, spec) ?? error;
    }
    return { id: container.id, secretsDelivered };
  }

  private async downNow(options: DownOptions): Promise<DownResult> {
    const [inspect, tunnel] = await Promise.all([this.inspect(), this.inspectTunnel()]);
    const remove = options.remove === true || options.removeState === true;
    let result: DownResult = { existed: false, wasRunning: false, removed: false };
    // The agent first: it drains while its network (the tunnel's namespace) is still there.
    if (inspect !== null) {
      const container = this.docker.getContainer(inspect.Id);
      const wasRunning = inspect.State.Running || inspect.State.Restarting;
      await stopContainer(
        container,
        options.timeoutSeconds ?? stopTimeoutOf(inspect) ?? stopTimeoutSeconds(AGENT_ENV.DRAIN_DEADLINE.default),
      );
      if (remove) await removeContainer(container);
      result = { existed: true, wasRunning, removed: remove };
    }
    if (tunnel !== null) {
      const container = this.docker.getContainer(tunnel.Id);
      await stopContainer(container, TUNNEL_STOP_SECONDS);
      if (remove) await removeContainer(container);
    }
    if (options.removeState === true) {
      for (const volume of [stateVolumeName(this.name), spillVolumeName(this.name), tunnelVolumeName(this.name)]) {
        try {
          await this.docker.getVolume(volume).remove();
        } catch (error) {
          if (statusOf(error) !== 404) throw error;
        }
      }
    }
    return result;
  }

  private async stopAndRemove(inspect: Dockerode.ContainerInspectInfo, seconds: number): Promise<void> {
    const container = this.docker.getContainer(inspect.Id);
    await stopContainer(container, seconds);
    await removeContainer(container);
  }

  private async findRole(role: string, name: string): Promise<Dockerode.ContainerInfo | null> {
    const found = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_ROLE}=${role}`, `${LABEL_INSTANCE}=${this.name}`] },
    });
    if (found.length === 0) return null;
    const named = found.find((info) => info.Names.includes(`/${name}`));
    return named ?? [...found].sort((a, b) => b.Created - a.Created)[0] ?? null;
  }

  private inspect(): Promise<Dockerode.ContainerInspectInfo | null> {
    return this.inspectInfo(this.find());
  }

  private inspectTunnel(): Promise<Dockerode.ContainerInspectInfo | null> {
    return this.inspectInfo(this.findTunnel());
  }

  private async inspectInfo(
    found: Promise<Dockerode.ContainerInfo | null>,
  ): Promise<Dockerode.ContainerInspectInfo | null> {
    const info = await found;
    if (info === null) return null;
    try {
      return await this.docker.getContainer(info.Id).inspect();
    } catch (error) {
      if (statusOf(error) === 404) return null; // removed between list and inspect
      throw error;
    }
  }

  private async ensureVolume(name: string, role: string): Promise<void> {
    try {
      await this.docker.getVolume(name).inspect();
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
      // Labelled so people (and cleanup) can tell it belongs to the app; an existing volume is reused as is.
      await this.docker.createVolume({
        Name: name,
        Labels: { [LABEL_MANAGED]: 'true', [LABEL_ROLE]: role, [LABEL_INSTANCE]: this.name },
      });
    }
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    this.pending++;
    const next = this.queue.then(task, task).finally(() => this.pending--);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** Writes the spec's secrets that the state volume does not hold yet; true when it wrote any. */
async function deliverSecrets(container: Dockerode.Container, spec: AgentSpec): Promise<boolean> {
  const delivered = await readDelivered(container);
  const write = secretsToWrite(spec, delivered);
  if (write.token === undefined && write.managerCaPem === undefined) return false;
  await container.putArchive(secretsArchive(write, delivered), { path: STATE_DIR });
  return true;
}

/** A drift item with whether the container claims to be current (then another image is hand-made, too). */
type PairDriftItem = DriftItem & { claimsCurrent?: boolean };

function withoutClaim({ claimsCurrent: _claim, ...item }: PairDriftItem): DriftItem {
  return item;
}

/** Drift of both containers; the tunnel's items say so. Another image is expected after a settings change. */
function pairDrift(
  agent: Dockerode.ContainerInspectInfo | null,
  tunnel: Dockerode.ContainerInspectInfo | null,
  spec: AgentSpec,
): PairDriftItem[] {
  const items: PairDriftItem[] = [];
  if (agent !== null) {
    const claims = agent.Config.Labels?.[LABEL_CONFIG_HASH] === configHash(spec);
    for (const item of containerDrift(agent, spec)) items.push({ ...item, claimsCurrent: claims });
  }
  if (tunnel !== null) {
    const claims = tunnel.Config.Labels?.[LABEL_CONFIG_HASH] === tunnelConfigHash(spec);
    for (const item of containerDrift(tunnel, spec, 'tunnel'))
      items.push({ ...item, detail: `the tunnel container: ${item.detail}`, claimsCurrent: claims });
  }
  return items;
}

/** Whether the agent's network is this tunnel's namespace (Docker stores the ID the name resolved to). */
function joins(agent: Dockerode.ContainerInspectInfo, tunnel: Dockerode.ContainerInspectInfo): boolean {
  const mode = agent.HostConfig.NetworkMode ?? '';
  return mode === `container:${tunnel.Id}` || mode === `container:${tunnel.Name.replace(/^\//, '')}`;
}

/**
 * What an agent of a running tunnel needs: a restart when the tunnel started after it (its namespace is a dead
 * one), a start when it never started (its tunnel was down when it was made), else nothing. Never for an agent
 * someone stopped.
 */
export function rejoinAction(
  agent: Dockerode.ContainerInspectInfo | null,
  tunnel: Dockerode.ContainerInspectInfo | null,
): 'restart' | 'start' | null {
  if (agent === null || tunnel === null || !tunnel.State.Running || tunnel.State.Restarting) return null;
  if (!joins(agent, tunnel) || agent.State.Restarting) return null;
  if (agent.State.Running) return startedAt(tunnel) > startedAt(agent) ? 'restart' : null;
  return agent.State.StartedAt === NEVER_STARTED ? 'start' : null;
}

function startedAt(inspect: Dockerode.ContainerInspectInfo): number {
  return inspect.State.StartedAt === NEVER_STARTED ? 0 : Date.parse(inspect.State.StartedAt);
}

function tunnelStatusOf(inspect: Dockerode.ContainerInspectInfo): TunnelContainerStatus {
  const state = inspect.State;
  return {
    id: inspect.Id,
    running: state.Running,
    restarting: state.Restarting,
    restartCount: inspect.RestartCount,
    exitCode: state.StartedAt === NEVER_STARTED ? null : state.ExitCode,
    startedAt: state.StartedAt === NEVER_STARTED ? null : state.StartedAt,
  };
}

function portTaken(error: unknown, spec: AgentSpec): Error | null {
  const message = error instanceof Error ? error.message : String(error);
  return /port is already allocated|address already in use/i.test(message)
    ? new Error(
        `the status port ${spec.statusPort} on 127.0.0.1 is taken by another program; choose another status port`,
      )
    : null;
}

function stopTimeoutFor(spec: AgentSpec): number {
  return stopTimeoutSeconds(drainSeconds(spec));
}

async function startContainer(container: Dockerode.Container): Promise<void> {
  try {
    await container.start();
  } catch (error) {
    if (statusOf(error) !== 304) throw error; // 304: already started
  }
}

async function stopContainer(container: Dockerode.Container, seconds: number): Promise<void> {
  try {
    await container.stop({ t: seconds });
  } catch (error) {
    const status = statusOf(error);
    if (status !== 304 && status !== 404) throw error; // 304: already stopped; 404: gone
  }
}

async function removeContainer(container: Dockerode.Container): Promise<void> {
  try {
    await container.remove({ force: true });
  } catch (error) {
    const status = statusOf(error);
    // 404: gone already; 409: removal already in progress.
    if (status !== 404 && status !== 409) throw error;
  }
}

/** The container's own grace period (Config.StopTimeout, missing from the typings). */
function stopTimeoutOf(inspect: Dockerode.ContainerInspectInfo): number | undefined {
  const value = (inspect.Config as { StopTimeout?: unknown }).StopTimeout;
  return typeof value === 'number' ? value : undefined;
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}
