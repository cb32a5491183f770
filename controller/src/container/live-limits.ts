import { AGENT_UID, type AgentControlReply, LIVE_LIMITS_FILE, LiveLimits, STATE_DIR } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { tarFiles } from '../engine/tar.js';
import { AgentControlError, agentControl } from './agent-control.js';
import { firstFileOf } from './state-volume-secrets.js';

/** The limits to hold now: the person's offer, and a throttle below it while stepping aside (null: full power). */
export interface LiveLimitsRequest {
  cpus: number;
  memoryBytes: number;
  throttleCpus: number | null;
}

export interface LiveLimitsOutcome {
  /** What the kernel enforces now (docker update succeeded). */
  nanoCpus: number;
  memoryBytes: number;
  /** The agent's answer; null when it was not asked (stopped container) or could not be (an older image). */
  reply: AgentControlReply | null;
  /** The CPUs Ray schedules now, as the agent reports them; null without a reply. */
  rayCpus: number | null;
  /**
   * Ray's view follows the offer without a restart. True for a stopped container (it sizes Ray by the new figures
   * when it starts). False: the kernel's limits hold, but Ray schedules by the old CPU count until the container
   * is restarted or replaced.
   */
  resizedLive: boolean;
  /** One sentence for the person when Ray's view did not follow; null when all followed. */
  warning: string | null;
}

/** Docker's smallest CPU limit (`--cpus 0.01`). */
export const MIN_CPUS = 0.01;
const MiB = 1024 ** 2;

/** The kernel's CPU limit while stepping aside to `fraction` of the offer. */
export function throttleCpusFor(cpus: number, fraction: number): number {
  return Math.max(MIN_CPUS, cpus * fraction);
}

/** NanoCpus for a CPU count, as Docker stores `--cpus`. */
export function nanoCpusFor(cpus: number): number {
  return Math.round(cpus * 1e9);
}

/** Throws a TypeError naming the field, the problem and an example. */
export function validateLiveLimits(limits: LiveLimitsRequest): void {
  const fail = (message: string) => {
    throw new TypeError(`live limits: ${message} (e.g. {cpus: 2, memoryBytes: 4294967296, throttleCpus: 0.2})`);
  };
  if (!Number.isFinite(limits.cpus) || limits.cpus < MIN_CPUS)
    fail(`cpus must be at least ${MIN_CPUS}, got ${limits.cpus}`);
  // Docker's own floor for a memory limit is 6 MiB; the agent's is far higher, checked by validateSpec.
  if (!Number.isInteger(limits.memoryBytes) || limits.memoryBytes < 6 * MiB)
    fail(`memoryBytes must be a whole number of at least ${6 * MiB}, got ${limits.memoryBytes}`);
  if (limits.throttleCpus !== null) {
    if (!Number.isFinite(limits.throttleCpus) || limits.throttleCpus < MIN_CPUS)
      fail(`throttleCpus must be null or at least ${MIN_CPUS}, got ${limits.throttleCpus}`);
    if (limits.throttleCpus > limits.cpus)
      fail(`throttleCpus (${limits.throttleCpus}) must not be above cpus (${limits.cpus})`);
  }
}

/**
 * Changes the running (or stopped) agent's limits in place, without a restart: `docker update` of NanoCpus (the
 * throttle when given, else the offer; Docker refuses CpuQuota beside NanoCpus, so only NanoCpus) and
 * Memory/MemorySwap (equal: no swap on top), then tells the agent so Ray's view follows.
 *
 * The kernel goes first, always: the limit is what the person was promised, so a lower one holds from the
 * moment this returns (the next CFS period), whatever the agent answers; Ray's view is bookkeeping after it.
 * ShmSize and the /tmp tmpfs keep their sizes (Docker cannot change them live): both count against the memory
 * limit, so they never let the container exceed it, and the agent fits its object store to what /dev/shm has.
 */
export async function applyLiveLimits(
  docker: Dockerode,
  agentName: string,
  limits: LiveLimitsRequest,
  options: { timeoutMs?: number } = {},
): Promise<LiveLimitsOutcome> {
  validateLiveLimits(limits);
  const container = docker.getContainer(agentName);
  let inspect: Dockerode.ContainerInspectInfo;
  try {
    inspect = await container.inspect();
  } catch (error) {
    if (statusOf(error) === 404)
      throw new Error(`cannot change the limits of ${agentName}: there is no such container`);
    throw error;
  }
  const nanoCpus = nanoCpusFor(limits.throttleCpus ?? limits.cpus);
  const running = inspect.State.Running && !inspect.State.Restarting;
  // Under cgroup v2 a memory.max below the usage OOM-kills (v1 refuses): refuse it here, before the kernel acts.
  if (running && limits.memoryBytes < (inspect.HostConfig.Memory ?? 0)) {
    const inUse = await workingSet(container);
    if (inUse !== null && inUse >= limits.memoryBytes)
      throw new Error(
        `cannot set the memory limit of ${agentName} to ${Math.round(limits.memoryBytes / MiB)} MiB: it uses ${Math.ceil(inUse / MiB)} MiB now, and a limit below that would kill its work. Choose more memory, or stop contributing first and change it then`,
      );
  }
  try {
    await container.update({ NanoCpus: nanoCpus, Memory: limits.memoryBytes, MemorySwap: limits.memoryBytes });
  } catch (error) {
    throw await updateError(container, agentName, limits, error);
  }

  const base = { nanoCpus, memoryBytes: limits.memoryBytes };
  if (!running) {
    // Nobody to tell now: the record the agent reads at its start gets the new offer, or it would size Ray by the
    // old one (or by a throttled cgroup).
    await writeLiveLimits(container, limits);
    return { ...base, reply: null, rayCpus: null, resizedLive: true, warning: null };
  }
  try {
    const reply = await agentControl(docker, agentName, { command: 'limits', ...limits }, options);
    const resizedLive = reply.ok && reply.resizedLive !== false;
    return {
      ...base,
      reply,
      rayCpus: reply.rayCpus ?? null,
      resizedLive,
      warning: resizedLive
        ? null
        : `the new limits hold, but Ray's own view did not follow (${reply.message.replace(/\.$/, '')}): it schedules by the old CPU count until the agent container is restarted`,
    };
  } catch (error) {
    if (!(error instanceof AgentControlError)) throw error;
    return {
      ...base,
      reply: null,
      rayCpus: null,
      resizedLive: false,
      warning:
        error.failure === 'no-bundle'
          ? 'the new limits hold, but this agent image is older and cannot resize Ray live: Ray schedules by the old figures until the container is replaced with a newer image'
          : `the new limits hold, but the agent could not be told (${error.message}): Ray schedules by the old figures until the agent container is restarted`,
    };
  }
}

/** The record of the offer the agent keeps on its state volume; null when there is none or it is unreadable. */
export async function readLiveLimits(container: Dockerode.Container): Promise<LiveLimits | null> {
  let archive: Buffer;
  try {
    const stream = await container.getArchive({ path: LIVE_LIMITS_FILE });
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    archive = Buffer.concat(chunks);
  } catch (error) {
    if (statusOf(error) === 404) return null;
    throw error;
  }
  const text = firstFileOf(archive);
  if (text === null) return null;
  try {
    const parsed = LiveLimits.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Writes the record into a stopped container's state volume, as the agent itself would (its uid, 0600). */
async function writeLiveLimits(container: Dockerode.Container, limits: LiveLimitsRequest): Promise<void> {
  const record: LiveLimits = { ...limits, updatedAt: new Date().toISOString() };
  const archive = tarFiles([
    {
      name: LIVE_LIMITS_FILE.slice(STATE_DIR.length + 1),
      content: `${JSON.stringify(record)}\n`,
      mode: 0o600,
      uid: AGENT_UID,
      gid: AGENT_UID,
    },
  ]);
  await container.putArchive(archive, { path: STATE_DIR });
}

/**
 * What `up` must change in place so an adopted container holds `offer`; null when nothing. A throttle stays: the
 * kernel enforces less than the offer AND the agent's record says that is a throttle (so a restarted controller
 * adopting a container that stepped aside does not put it back to full power; lifting it is the policy's call).
 * Without a record (an older image, or a kill between docker update and the agent's answer) a lower CPU limit is
 * taken for an old offer and brought to the new one; the policy throttles again on its next apply.
 */
export function limitsToReconcile(
  host: Pick<Dockerode.HostConfig, 'NanoCpus' | 'Memory' | 'MemorySwap'>,
  offer: { cpus: number; memoryBytes: number },
  recorded: RecordedLimits | null,
): LiveLimitsRequest | null {
  const nano = host.NanoCpus ?? 0;
  const recordedThrottle = recorded?.throttleCpus ?? null;
  const throttleCpus =
    recordedThrottle !== null && recordedThrottle < offer.cpus && nano === nanoCpusFor(recordedThrottle)
      ? recordedThrottle
      : null;
  const target = { cpus: offer.cpus, memoryBytes: offer.memoryBytes, throttleCpus };
  return limitsHold(host, target, recorded) ? null : target;
}

/** The fields of the agent's record that say what it was last told. */
export type RecordedLimits = Pick<LiveLimits, 'cpus' | 'memoryBytes' | 'throttleCpus'>;

/**
 * Whether the container holds `limits` already: the kernel's figures, and the agent's record when there is one
 * (no record: an older image, or an agent never told, which sizes Ray by its cgroup at start).
 */
export function limitsHold(
  host: Pick<Dockerode.HostConfig, 'NanoCpus' | 'Memory' | 'MemorySwap'>,
  limits: LiveLimitsRequest,
  recorded: RecordedLimits | null,
): boolean {
  const kernel =
    (host.NanoCpus ?? 0) === nanoCpusFor(limits.throttleCpus ?? limits.cpus) &&
    host.Memory === limits.memoryBytes &&
    host.MemorySwap === limits.memoryBytes;
  const record =
    recorded === null ||
    (recorded.cpus === limits.cpus &&
      recorded.memoryBytes === limits.memoryBytes &&
      (recorded.throttleCpus ?? null) === limits.throttleCpus);
  return kernel && record;
}

/** Docker's refusal, said plainly: memory cannot go below what the container uses now. */
async function updateError(
  container: Dockerode.Container,
  agentName: string,
  limits: LiveLimitsRequest,
  error: unknown,
): Promise<Error> {
  const message = error instanceof Error ? error.message : String(error);
  if (!/device or resource busy|memory|swap/i.test(message)) return error instanceof Error ? error : new Error(message);
  const inUse = await workingSet(container).catch(() => null);
  const usage = inUse === null ? '' : ` it uses ${Math.ceil(inUse / MiB)} MiB now;`;
  return new Error(
    `cannot set the memory limit of ${agentName} to ${Math.round(limits.memoryBytes / MiB)} MiB:${usage} Docker refused (${message.replace(/\s+/g, ' ').trim()}). Choose more memory, or stop contributing first and change it then`,
  );
}

/**
 * The container's memory that reclaim cannot free, as `docker stats` counts it: usage minus inactive file pages
 * (cgroup v1 names them total_inactive_file, v2 inactive_file). Null when the engine gives no figure.
 */
async function workingSet(container: Dockerode.Container): Promise<number | null> {
  const stats = (await container.stats({ stream: false })) as {
    memory_stats?: { usage?: number; stats?: Record<string, number> };
  };
  const usage = stats.memory_stats?.usage;
  if (typeof usage !== 'number') return null;
  const inner = stats.memory_stats?.stats ?? {};
  const inactive = inner.total_inactive_file ?? inner.inactive_file ?? 0;
  return Math.max(0, usage - inactive);
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}
