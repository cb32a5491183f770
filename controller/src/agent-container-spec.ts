import { createHash } from 'node:crypto';
import type Dockerode from 'dockerode';
import { tarFiles } from './tar.js';

/** What the person chose, as the controller turns it into the agent container. */
export interface AgentSpec {
  image: string;
  /** RAY_HEAD: ray://HOST:10001 or HOST:6379. */
  clusterAddress: string;
  managerUrl: string;
  cpus: number;
  memoryBytes: number;
  /** The host port on 127.0.0.1 that serves the agent's status endpoint. */
  statusPort: number;
  /** The enrollment token; written to a file on the state volume, never into the environment or labels. */
  token?: string;
  /** PEM of a private CA that signed the manager's certificate. */
  managerCaPem?: string;
  /** Seconds running tasks get to finish on stop. Default 25. */
  drainDeadlineSeconds?: number;
  /** A Docker network to attach (the playground and tests). */
  network?: string;
  /** Container name. Default 'ray-agent'; the state volume is `${name}-state`. */
  name?: string;
  extraEnv?: Record<string, string>;
}

export const LABEL_MANAGED = 'io.ray-agent.managed';
export const LABEL_ROLE = 'io.ray-agent.role';
/** Which agent of this engine: tests and the playground run more than one. */
export const LABEL_INSTANCE = 'io.ray-agent.instance';
export const LABEL_CONFIG_HASH = 'io.ray-agent.config-hash';

export const DEFAULT_NAME = 'ray-agent';
export const STATE_DIR = '/var/lib/ray-agent';
export const SECRETS_DIR = `${STATE_DIR}/secrets`;
export const TOKEN_FILE = `${SECRETS_DIR}/enrollment-token`;
export const CA_FILE = `${SECRETS_DIR}/manager-ca.pem`;
/** The status port inside the container; the host port is the person's choice. */
export const CONTAINER_STATUS_PORT = 8765;
export const AGENT_UID = 1000;
const DEFAULT_DRAIN_SECONDS = 25;
/** Bumped when the recipe below changes, so existing containers are recreated with it. */
const RECIPE_VERSION = 1;
const MiB = 1024 ** 2;

/** Variables the controller sets itself; extraEnv may not override them or carry secrets around the file. */
const RESERVED_ENV = new Set([
  'RAY_HEAD',
  'MANAGER_URL',
  'AGENT_TOKEN',
  'AGENT_TOKEN_FILE',
  'MANAGER_CA_FILE',
  'DRAIN_DEADLINE',
  'STATUS_PORT',
  'STATE_DIR',
  'TINI_SUBREAPER',
]);

export function specName(spec: Pick<AgentSpec, 'name'>): string {
  return spec.name ?? DEFAULT_NAME;
}

export function stateVolumeName(name: string): string {
  return `${name}-state`;
}

export function drainSeconds(spec: Pick<AgentSpec, 'drainDeadlineSeconds'>): number {
  return spec.drainDeadlineSeconds ?? DEFAULT_DRAIN_SECONDS;
}

/** Throws a TypeError naming the first field that cannot become a container. */
export function validateSpec(spec: AgentSpec): void {
  const fail = (message: string) => {
    throw new TypeError(`agent spec: ${message}`);
  };
  if (spec.image.trim() === '') fail('image is empty');
  if (spec.clusterAddress.trim() === '') fail('clusterAddress is empty');
  if (spec.managerUrl.trim() === '') fail('managerUrl is empty');
  if (!Number.isFinite(spec.cpus) || spec.cpus <= 0) fail(`cpus must be above 0, got ${spec.cpus}`);
  if (!Number.isInteger(spec.memoryBytes) || spec.memoryBytes < 512 * MiB)
    fail(`memoryBytes must be a whole number of at least 512 MiB, got ${spec.memoryBytes}`);
  if (!Number.isInteger(spec.statusPort) || spec.statusPort < 1 || spec.statusPort > 65535)
    fail(`statusPort must be 1-65535, got ${spec.statusPort}`);
  const drain = drainSeconds(spec);
  if (!Number.isInteger(drain) || drain < 0) fail(`drainDeadlineSeconds must be a whole number >= 0, got ${drain}`);
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(specName(spec))) fail(`name "${specName(spec)}" is not a container name`);
  if (spec.token !== undefined && !/^[\x21-\x7e]+$/.test(spec.token))
    fail('token is empty or contains spaces, line breaks or control characters');
  for (const [key, value] of Object.entries(spec.extraEnv ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) fail(`extraEnv name "${key}" is not a variable name`);
    if (RESERVED_ENV.has(key)) fail(`extraEnv may not set ${key}: the controller sets it`);
    if (spec.token !== undefined && value.includes(spec.token))
      fail(`extraEnv ${key} holds the enrollment token; the token goes only into its file`);
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * A digest of everything that shapes the container. Secrets enter only as their own hashes, so a new token
 * recreates the container (and rewrites the file) while the label reveals nothing usable.
 */
export function configHash(spec: AgentSpec): string {
  const extraEnv = Object.entries(spec.extraEnv ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const canonical = {
    recipe: RECIPE_VERSION,
    image: spec.image,
    clusterAddress: spec.clusterAddress,
    managerUrl: spec.managerUrl,
    cpus: spec.cpus,
    memoryBytes: spec.memoryBytes,
    statusPort: spec.statusPort,
    drainDeadlineSeconds: drainSeconds(spec),
    network: spec.network ?? null,
    name: specName(spec),
    extraEnv,
    tokenHash: spec.token === undefined ? null : sha256(`token:${spec.token}`),
    caHash: spec.managerCaPem === undefined ? null : sha256(`ca:${spec.managerCaPem}`),
  };
  return sha256(JSON.stringify(canonical));
}

/**
 * /dev/shm for Ray's object store. The agent sizes the store at 30% of memory (at least 75 MiB; we give 128) and
 * uses at most 90% of /dev/shm for it, so /dev/shm is the store / 0.9 plus 1%, in whole MiB.
 */
export function shmSizeFor(memoryBytes: number): number {
  const store = Math.max(128 * MiB, Math.floor(memoryBytes * 0.3));
  return Math.ceil((store / 0.9 / MiB) * 1.01) * MiB;
}

/** /tmp holds Ray's session files and logs: half the memory, at most 2 GiB, in whole MiB. */
export function tmpfsSizeFor(memoryBytes: number): number {
  return Math.floor(Math.min(2048 * MiB, memoryBytes / 2) / MiB) * MiB;
}

export function agentLabels(spec: AgentSpec): Record<string, string> {
  return {
    [LABEL_MANAGED]: 'true',
    [LABEL_ROLE]: 'agent',
    [LABEL_INSTANCE]: specName(spec),
    [LABEL_CONFIG_HASH]: configHash(spec),
  };
}

/** The agent container as the controller creates it. */
export function createOptions(spec: AgentSpec): Dockerode.ContainerCreateOptions {
  const name = specName(spec);
  const drain = drainSeconds(spec);
  const env: Record<string, string> = {
    ...spec.extraEnv,
    RAY_HEAD: spec.clusterAddress,
    MANAGER_URL: spec.managerUrl,
    DRAIN_DEADLINE: String(drain),
    STATUS_PORT: String(CONTAINER_STATUS_PORT),
    // Init puts docker-init at PID 1, so the image's own tini runs below it; as a subreaper it still reaps
    // orphaned Ray workers.
    TINI_SUBREAPER: '1',
  };
  if (spec.token !== undefined) env.AGENT_TOKEN_FILE = TOKEN_FILE;
  if (spec.managerCaPem !== undefined) env.MANAGER_CA_FILE = CA_FILE;
  const port = `${CONTAINER_STATUS_PORT}/tcp`;
  const hostConfig: Dockerode.HostConfig = {
    NanoCpus: Math.round(spec.cpus * 1e9),
    Memory: spec.memoryBytes,
    // Equal to Memory: no swap on top of the limit the person chose.
    MemorySwap: spec.memoryBytes,
    ShmSize: shmSizeFor(spec.memoryBytes),
    // Loopback only: a bare publish binds every interface and bypasses host firewalls.
    PortBindings: { [port]: [{ HostIp: '127.0.0.1', HostPort: String(spec.statusPort) }] },
    Mounts: [{ Type: 'volume', Source: stateVolumeName(name), Target: STATE_DIR }],
    Tmpfs: { '/tmp': `rw,exec,nosuid,nodev,size=${tmpfsSizeFor(spec.memoryBytes) / MiB}m` },
    ReadonlyRootfs: true,
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    Init: true,
    // unless-stopped: the agent comes back after the engine or the computer restarts, and a stop by the app (or
    // `docker stop`) is respected until the app starts it again.
    RestartPolicy: { Name: 'unless-stopped' },
    PidsLimit: 4096,
  };
  if (spec.network !== undefined) hostConfig.NetworkMode = spec.network;
  return {
    name,
    Image: spec.image,
    Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
    Labels: agentLabels(spec),
    ExposedPorts: { [port]: {} },
    User: `${AGENT_UID}:${AGENT_UID}`,
    // More than the drain deadline, or Docker kills a drain of running tasks.
    StopTimeout: drain + 15,
    HostConfig: hostConfig,
  };
}

/**
 * The secrets as a tar for `putArchive` into the state volume: `secrets/` (0700) and its files (0600), owned by
 * the agent's uid. A secret the spec no longer has is written empty, so an old token does not linger.
 */
export function secretsArchive(spec: AgentSpec): Buffer {
  const owner = { uid: AGENT_UID, gid: AGENT_UID };
  return tarFiles([
    { name: 'secrets/', directory: true, mode: 0o700, ...owner },
    {
      name: 'secrets/enrollment-token',
      mode: 0o600,
      ...owner,
      content: spec.token ?? '',
    },
    { name: 'secrets/manager-ca.pem', mode: 0o600, ...owner, content: spec.managerCaPem ?? '' },
  ]);
}
