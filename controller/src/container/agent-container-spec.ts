import { createHash } from 'node:crypto';
import {
  type AcceptWork,
  AGENT_ENV,
  AGENT_UID,
  CA_FILE,
  CONTAINER_STATUS_PORT,
  CONTROLLER_SET_ENV,
  GVISOR_MASKED_PATHS,
  GVISOR_READONLY_PATHS,
  GVISOR_SECCOMP_PROFILE,
  MIN_MEMORY_BYTES,
  SANDBOX_TMPFS_FLAGS,
  SECRETS_DIR,
  SPILL_DIR,
  STATE_DIR,
  shmBytesFor,
  stopTimeoutSeconds,
  TOKEN_FILE,
  TUNNEL_DIR,
  tmpfsBytesFor,
} from '@ray-agent/protocol';
import type Dockerode from 'dockerode';

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
  /**
   * The enrollment token; written to a file on the state volume, never into the environment or labels. Not part of
   * the container's identity: a new token is delivered into the volume of the existing container.
   */
  token?: string;
  /** PEM of a private CA that signed the manager's certificate; delivered like the token. */
  managerCaPem?: string;
  /** Seconds running tasks get to finish on stop. Default 25. */
  drainDeadlineSeconds?: number;
  /**
   * The pair (default): a tunnel container owns the network namespace (WireGuard overlay, or direct when the
   * manager offers no gateway) and the agent joins it. False (`network: direct` in the settings): the agent alone.
   */
  tunnel?: boolean;
  /** A Docker network to attach (the playground and tests); the tunnel container's in the pair. */
  network?: string;
  /** Container name. Default 'ray-agent'; the state volume is `${name}-state`, the tunnel `${name}-tunnel`. */
  name?: string;
  extraEnv?: Record<string, string>;
  /** ACCEPT_WORK: `sandboxed` lets only gVisor sandboxes run here. Default `any`. */
  acceptWork?: AcceptWork;
  /** SANDBOX_NETWORK: whether a sandbox may have the network its job asks for. Default false. */
  sandboxNetwork?: boolean;
}

export const LABEL_MANAGED = 'io.ray-agent.managed';
export const LABEL_ROLE = 'io.ray-agent.role';
/** Which agent of this engine: tests and the playground run more than one. */
export const LABEL_INSTANCE = 'io.ray-agent.instance';
export const LABEL_CONFIG_HASH = 'io.ray-agent.config-hash';

export const DEFAULT_NAME = 'ray-agent';
// The container's side of the contract lives in protocol (the agent reads the same names); re-exported for the
// controller's other files.
export { AGENT_UID, CA_FILE, CONTAINER_STATUS_PORT, SECRETS_DIR, SPILL_DIR, STATE_DIR, TOKEN_FILE };

const DEFAULT_DRAIN_SECONDS = AGENT_ENV.DRAIN_DEADLINE.default;
/**
 * Bumped when the recipe below changes, so existing containers are recreated with it. 2: the secrets left the
 * hash (a new token is delivered into the volume, not by a new container) and AGENT_TOKEN_FILE is always set.
 * 3: the tunnel pair. 4: the CPU and memory limits left the hash (`up` changes them live, see live-limits.ts).
 * 5: the spill volume. 6: what Ray's gVisor sandboxes need (protocol's sandbox.ts): the seccomp profile, the /proc
 * masks gone, /tmp without nosuid/nodev.
 */
const RECIPE_VERSION = 6;
const MiB = 1024 ** 2;
/** Docker's API takes a seccomp profile as its JSON text (the CLI reads it from a file). */
export const AGENT_SECCOMP_OPTION = `seccomp=${JSON.stringify(GVISOR_SECCOMP_PROFILE)}`;

/** Variables the controller sets itself; extraEnv may not override them or carry secrets around the file. */
const RESERVED_ENV: ReadonlySet<string> = new Set(CONTROLLER_SET_ENV);

export function specName(spec: Pick<AgentSpec, 'name'>): string {
  return spec.name ?? DEFAULT_NAME;
}

export function stateVolumeName(name: string): string {
  return `${name}-state`;
}

/**
 * Where Ray spills objects: a disk-backed volume of its own, so spilling moves bytes out of the memory limit
 * (a tmpfs /tmp is charged to it). Not sized by Docker (the local driver has no quota): Ray stops spilling when
 * the disk holding it passes its local_fs_capacity_threshold (95 % full), and the volume is emptied by Ray at
 * each node start and removed with the state volume.
 */
export function spillVolumeName(name: string): string {
  return `${name}-spill`;
}

/** Whether this spec runs the pair (the default) or the agent alone on the Docker network (`network: direct`). */
export function usesTunnel(spec: Pick<AgentSpec, 'tunnel'>): boolean {
  return spec.tunnel !== false;
}

/** The tunnel container of the agent `name`; its volume has the same name. */
export function tunnelName(name: string): string {
  return `${name}-tunnel`;
}

export function tunnelVolumeName(name: string): string {
  return `${name}-tunnel`;
}

/** The status port as it is published (by the tunnel in the pair): loopback only, a bare publish binds every interface. */
export function statusPortBindings(spec: Pick<AgentSpec, 'statusPort'>): Dockerode.PortMap {
  return { [`${CONTAINER_STATUS_PORT}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: String(spec.statusPort) }] };
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
  if (!Number.isInteger(spec.memoryBytes) || spec.memoryBytes < MIN_MEMORY_BYTES)
    fail(`memoryBytes must be a whole number of at least ${MIN_MEMORY_BYTES / MiB} MiB, got ${spec.memoryBytes}`);
  if (!Number.isInteger(spec.statusPort) || spec.statusPort < 1 || spec.statusPort > 65535)
    fail(`statusPort must be 1-65535, got ${spec.statusPort}`);
  const drain = drainSeconds(spec);
  if (!Number.isInteger(drain) || drain < 0) fail(`drainDeadlineSeconds must be a whole number >= 0, got ${drain}`);
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(specName(spec))) fail(`name "${specName(spec)}" is not a container name`);
  if (spec.managerCaPem !== undefined && !spec.managerCaPem.includes('-----BEGIN CERTIFICATE-----'))
    fail('managerCaPem is not a PEM certificate (-----BEGIN CERTIFICATE----- ...)');
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
 * A digest of everything that shapes the container: what two callers with the same settings (the tray app, the
 * CLI, the playground) must agree on. The secrets are not in it: whether the token is given or not, and which one,
 * the container is the same; `up` delivers a new token into its state volume instead of replacing it. Nor are the
 * CPU and memory limits: `docker update` changes them on the running container (a throttle too), so they are
 * reconciled in place, not by a new container. ShmSize and the /tmp size, derived from memory at creation, stay.
 */
export function configHash(spec: AgentSpec): string {
  const extraEnv = Object.entries(spec.extraEnv ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const canonical = {
    recipe: RECIPE_VERSION,
    image: spec.image,
    clusterAddress: spec.clusterAddress,
    managerUrl: spec.managerUrl,
    statusPort: spec.statusPort,
    drainDeadlineSeconds: drainSeconds(spec),
    acceptWork: spec.acceptWork ?? 'any',
    sandboxNetwork: spec.sandboxNetwork === true,
    tunnel: usesTunnel(spec),
    network: spec.network ?? null,
    name: specName(spec),
    extraEnv,
  };
  return sha256(JSON.stringify(canonical));
}

/** Whether a container created with `env` can use the secrets of `spec`: a CA needs MANAGER_CA_FILE to be read. */
export function envTakesSecrets(env: readonly string[], spec: Pick<AgentSpec, 'managerCaPem'>): boolean {
  return spec.managerCaPem === undefined || env.includes(`${AGENT_ENV.MANAGER_CA_FILE.name}=${CA_FILE}`);
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
    [AGENT_ENV.RAY_HEAD.name]: spec.clusterAddress,
    [AGENT_ENV.MANAGER_URL.name]: spec.managerUrl,
    [AGENT_ENV.DRAIN_DEADLINE.name]: String(drain),
    [AGENT_ENV.ACCEPT_WORK.name]: spec.acceptWork ?? 'any',
    [AGENT_ENV.SANDBOX_NETWORK.name]: spec.sandboxNetwork === true ? 'on' : 'off',
    [AGENT_ENV.STATUS_PORT.name]: String(CONTAINER_STATUS_PORT),
    // Always set, token or not: the file on the state volume is where a token is delivered, now or later, and the
    // agent reads a missing or empty file as "no token".
    [AGENT_ENV.AGENT_TOKEN_FILE.name]: TOKEN_FILE,
    // Init puts docker-init at PID 1, so the image's own tini runs below it; as a subreaper it still reaps
    // orphaned Ray workers.
    [AGENT_ENV.TINI_SUBREAPER.name]: '1',
  };
  // Only with a CA: the agent refuses a MANAGER_CA_FILE it cannot read.
  if (spec.managerCaPem !== undefined) env[AGENT_ENV.MANAGER_CA_FILE.name] = CA_FILE;
  const port = `${CONTAINER_STATUS_PORT}/tcp`;
  const paired = usesTunnel(spec);
  const hostConfig: Dockerode.HostConfig = {
    NanoCpus: Math.round(spec.cpus * 1e9),
    Memory: spec.memoryBytes,
    // Equal to Memory: no swap on top of the limit the person chose.
    MemorySwap: spec.memoryBytes,
    // What gives the agent's memory plan its full object store (the same rule the agent applies).
    ShmSize: shmBytesFor(spec.memoryBytes),
    Mounts: [
      { Type: 'volume', Source: stateVolumeName(name), Target: STATE_DIR },
      { Type: 'volume', Source: spillVolumeName(name), Target: SPILL_DIR },
      // The tunnel's public key and status; its private key there is root's 0600, unreadable to the agent's uid.
      ...(paired
        ? [{ Type: 'volume' as const, Source: tunnelVolumeName(name), Target: TUNNEL_DIR, ReadOnly: true }]
        : []),
    ],
    Tmpfs: { '/tmp': `${SANDBOX_TMPFS_FLAGS},size=${tmpfsBytesFor(spec.memoryBytes) / MiB}m` },
    ReadonlyRootfs: true,
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges', AGENT_SECCOMP_OPTION],
    MaskedPaths: [...GVISOR_MASKED_PATHS],
    ReadonlyPaths: [...GVISOR_READONLY_PATHS],
    Init: true,
    // unless-stopped: the agent comes back after the engine or the computer restarts, and a stop by the app (or
    // `docker stop`) is respected until the app starts it again.
    RestartPolicy: { Name: 'unless-stopped' },
    PidsLimit: 4096,
  };
  // In the pair the tunnel owns the namespace, its Docker network and the published port (Docker refuses ports on
  // a joined namespace).
  if (paired) hostConfig.NetworkMode = `container:${tunnelName(name)}`;
  else {
    hostConfig.PortBindings = statusPortBindings(spec);
    if (spec.network !== undefined) hostConfig.NetworkMode = spec.network;
  }
  return {
    name,
    Image: spec.image,
    Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
    Labels: agentLabels(spec),
    ...(paired ? {} : { ExposedPorts: { [port]: {} } }),
    User: `${AGENT_UID}:${AGENT_UID}`,
    // Covers the agent's slowest stop (drain, Ray's forced stop, the last heartbeat), or Docker kills it first.
    StopTimeout: stopTimeoutSeconds(drain),
    HostConfig: hostConfig,
  };
}
