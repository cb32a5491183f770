import { AGENT_ENV, type OfferableLimits, type PullProgress, STATE_DIR, stopTimeoutSeconds } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
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
  stateVolumeName,
  validateSpec,
} from './agent-container-spec.js';
import { containerDrift, type DriftItem } from './container-drift.js';
import { type LogFollow, type LogOptions, type LogSource, readLogs } from './container-logs.js';
import { type EnsureImageResult, ensureImage, type PullPolicy } from './image-pull.js';
import { offerableLimits } from './offerable-limits.js';
import { readDelivered, secretsArchive, secretsToWrite } from './state-volume-secrets.js';

export type { AgentSpec } from './agent-container-spec.js';
export type { DriftItem } from './container-drift.js';
export type { LogFollow, LogOptions, LogSource } from './container-logs.js';
export type { EnsureImageResult, PullPolicy } from './image-pull.js';

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

/** The controller of THE agent container (one per name): create, adopt, replace, stop, inspect, read logs. */
export class AgentContainer {
  readonly name: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly docker: Dockerode,
    options: { name?: string } = {},
  ) {
    this.name = options.name ?? DEFAULT_NAME;
  }

  ensureImage(
    image: string,
    onProgress: (progress: PullProgress) => void,
    options: { pull?: PullPolicy } = {},
  ): Promise<EnsureImageResult> {
    return ensureImage(this.docker, image, onProgress, options);
  }

  /** Our container: labelled managed, role agent and this instance name. */
  async find(): Promise<Dockerode.ContainerInfo | null> {
    const found = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_ROLE}=agent`, `${LABEL_INSTANCE}=${this.name}`] },
    });
    if (found.length === 0) return null;
    const named = found.find((info) => info.Names.includes(`/${this.name}`));
    return named ?? [...found].sort((a, b) => b.Created - a.Created)[0] ?? null;
  }

  /**
   * Makes the agent run as `spec` says: adopts a matching container (starting it if stopped), replaces one whose
   * configuration differs (graceful stop first; the state volume stays), or creates one.
   */
  up(spec: AgentSpec, onProgress: (progress: PullProgress) => void = () => {}, options: UpOptions = {}) {
    return this.serial(() => this.upNow(spec, onProgress, options));
  }

  /** Stops the agent gracefully (it drains); keeps the container unless asked. Stopping twice is fine. */
  down(options: DownOptions = {}) {
    return this.serial(() => this.downNow(options));
  }

  async status(): Promise<AgentStatus> {
    const inspect = await this.inspect();
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
      };
    const state = inspect.State;
    const binding = inspect.HostConfig.PortBindings?.[`${CONTAINER_STATUS_PORT}/tcp`]?.[0] as
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
    };
  }

  /** Differences from what `up(spec)` would create that a person must confirm before replacement; [] if none. */
  async drift(spec: AgentSpec): Promise<DriftItem[]> {
    const inspect = await this.inspect();
    return inspect === null ? [] : containerDrift(inspect, spec);
  }

  async logs(options: LogOptions, onLine: (line: string, source: LogSource) => void): Promise<LogFollow> {
    const info = await this.find();
    if (info === null) throw new Error(`there is no ${this.name} container, so no log`);
    return readLogs(this.docker.getContainer(info.Id), options, onLine);
  }

  limits(): Promise<OfferableLimits> {
    return offerableLimits(this.docker);
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

    let outcome: UpOutcome = 'created';
    const inspect = await this.inspect();
    if (inspect !== null) {
      const container = this.docker.getContainer(inspect.Id);
      const sameHash = inspect.Config.Labels?.[LABEL_CONFIG_HASH] === configHash(spec);
      const drift = containerDrift(inspect, spec);
      // Another image is the expected result of a settings change, unless the container claims to be current.
      const handMade = drift.filter((item) => item.kind !== 'image' || sameHash);
      if (handMade.length > 0 && options.confirmDrift !== true) throw new DriftError(this.name, handMade);
      if (sameHash && drift.length === 0 && envTakesSecrets(inspect.Config.Env ?? [], spec)) {
        // Same container whether or not this caller has the token: a new secret goes into its volume.
        const secretsDelivered = await deliverSecrets(container, spec);
        if (inspect.State.Paused) await container.unpause();
        // Restarting: the restart policy starts it again by itself, and it reads the new files then.
        if (inspect.State.Restarting) return { outcome: 'adopted', id: inspect.Id, secretsDelivered, warnings };
        if (!inspect.State.Running) await startContainer(container);
        else if (secretsDelivered) await container.restart({ t: stopTimeoutOf(inspect) ?? stopTimeoutFor(spec) });
        return { outcome: 'adopted', id: inspect.Id, secretsDelivered, warnings };
      }
      await stopContainer(container, stopTimeoutOf(inspect) ?? stopTimeoutFor(spec));
      await removeContainer(container);
      outcome = 'replaced';
    }
    const { id, secretsDelivered } = await this.create(spec);
    return { outcome, id, secretsDelivered, warnings };
  }

  private async create(spec: AgentSpec): Promise<{ id: string; secretsDelivered: boolean }> {
    await this.ensureStateVolume();
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
      await container.start();
    } catch (error) {
      // A container that never started would be adopted and fail the same way next time: remove it.
      await removeContainer(container).catch(() => undefined);
      const message = error instanceof Error ? error.message : String(error);
      if (/port is already allocated|address already in use/i.test(message))
        throw new Error(
          `the status port ${spec.statusPort} on 127.0.0.1 is taken by another program; choose another status port`,
        );
      throw error;
    }
    return { id: container.id, secretsDelivered };
  }

  private async downNow(options: DownOptions): Promise<DownResult> {
    const inspect = await this.inspect();
    let result: DownResult = { existed: false, wasRunning: false, removed: false };
    if (inspect !== null) {
      const container = this.docker.getContainer(inspect.Id);
      const wasRunning = inspect.State.Running || inspect.State.Restarting;
      await stopContainer(
        container,
        options.timeoutSeconds ?? stopTimeoutOf(inspect) ?? stopTimeoutSeconds(AGENT_ENV.DRAIN_DEADLINE.default),
      );
      const remove = options.remove === true || options.removeState === true;
      if (remove) await removeContainer(container);
      result = { existed: true, wasRunning, removed: remove };
    }
    if (options.removeState === true) {
      try {
        await this.docker.getVolume(stateVolumeName(this.name)).remove();
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
      }
    }
    return result;
  }

  private async inspect(): Promise<Dockerode.ContainerInspectInfo | null> {
    const info = await this.find();
    if (info === null) return null;
    try {
      return await this.docker.getContainer(info.Id).inspect();
    } catch (error) {
      if (statusOf(error) === 404) return null; // removed between list and inspect
      throw error;
    }
  }

  private async ensureStateVolume(): Promise<void> {
    const name = stateVolumeName(this.name);
    try {
      await this.docker.getVolume(name).inspect();
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
      // Labelled so people (and cleanup) can tell it belongs to the app; an existing volume is reused as is.
      await this.docker.createVolume({
        Name: name,
        Labels: { [LABEL_MANAGED]: 'true', [LABEL_ROLE]: 'agent-state', [LABEL_INSTANCE]: this.name },
      });
    }
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task, task);
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
