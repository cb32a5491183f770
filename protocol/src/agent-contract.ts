import { SANDBOX_NETWORK_VARIABLE } from './sandbox.js';
import type { ObjectStoreLocation } from './status.js';

/**
 * The agent container's interface, written once: what the controller (tray app, CLI, playground) and the agent
 * inside the image both rely on. Exit codes, the stop budget, and (below) the environment and sizing rules.
 */

/** Exit codes a restart policy, the tray app and a person reading `docker ps -a` can act on. */
export const ExitCode = {
  ok: 0,
  /** A forced stop (second signal) or an unexpected failure; a restart brings the same provider back. */
  forced: 1,
  badConfig: 2,
  enrollmentRejected: 3,
  stateDirUnusable: 5,
  /** /tmp (Ray's session files, sockets and logs) is not writable: a read-only root without a tmpfs. */
  tmpUnwritable: 6,
  /** The manager refused registration for another reason than the token: its TLS certificate, a 4xx. */
  registrationFailed: 7,
  /** The tunnel container restarted and took the network namespace this agent ran in: restart into the new one. */
  tunnelNamespaceGone: 8,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * The agent's slowest stop path, each step bounded by the agent itself: Ray drains for the drain deadline; then
 * `ray start` gets `rayForceStop` more seconds before its process group is killed; then any Ray process left is
 * killed by PID (`leftoverKill`); then the last heartbeat (`finalHeartbeat`). The container's stop timeout adds a
 * margin on top, so Docker's SIGKILL never comes first.
 */
export const STOP_STEPS_SECONDS = { rayForceStop: 5, leftoverKill: 2, finalHeartbeat: 3 } as const;
export const STOP_MARGIN_SECONDS = 5;

/** The most the agent's stop can take after the drain deadline: what `docker stop` must wait beyond it. */
export function agentStopSeconds(drainDeadlineSeconds: number): number {
  const { rayForceStop, leftoverKill, finalHeartbeat } = STOP_STEPS_SECONDS;
  return drainDeadlineSeconds + rayForceStop + leftoverKill + finalHeartbeat;
}

/** The container's stop timeout (`docker run --stop-timeout`, Config.StopTimeout) for a drain deadline. */
export function stopTimeoutSeconds(drainDeadlineSeconds: number): number {
  return agentStopSeconds(drainDeadlineSeconds) + STOP_MARGIN_SECONDS;
}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** The state volume's mount point inside the container: install ID, credentials, and the controller's secrets. */
export const STATE_DIR = '/var/lib/ray-agent';
/**
 * The spill volume's mount point: a disk-backed Docker volume where Ray spills objects that do not fit in its
 * object store (`ray start --object-spilling-directory`, also plasma's fallback for allocations). On disk, outside
 * the memory cgroup: under the tmpfs /tmp (Ray's default, its session dir) spilling could not relieve memory.
 */
export const SPILL_DIR = '/var/lib/ray-agent-spill';
/** Files the controller writes into the state volume (0700 directory, 0600 files, owned by AGENT_UID). */
export const SECRETS_DIR = `${STATE_DIR}/secrets`;
export const TOKEN_FILE = `${SECRETS_DIR}/enrollment-token`;
export const CA_FILE = `${SECRETS_DIR}/manager-ca.pem`;
/** The status endpoint's port inside the container; the host port is the person's choice. */
export const CONTAINER_STATUS_PORT = 8765;
/** The image's user (uid and gid). */
export const AGENT_UID = 1000;
/** Below this a Ray node (raylet, object store, a worker or two, the agent) is OOM-killed at once. */
export const MIN_MEMORY_BYTES = 512 * MiB;

/**
 * One variable of the agent's environment. `default` is what the agent uses when it is unset (undefined: none, the
 * meaning says what happens then); `min`/`max` bound whole-number variables; `example` is a good value, used in
 * error messages; `controllerSets` marks what the controller writes itself (a person's extra variables may not).
 */
export interface AgentEnvVar {
  readonly name: string;
  readonly default: string | number | undefined;
  readonly min?: number;
  readonly max?: number;
  readonly meaning: string;
  readonly example: string;
  readonly controllerSets?: true;
  /** Set inside the image (its entrypoint), never by a person or the controller. */
  readonly imageSets?: true;
}

/** The agent container's environment, every variable the agent reads (and tini's one), each once. */
export const AGENT_ENV = {
  RAY_HEAD: {
    name: 'RAY_HEAD',
    default: undefined,
    meaning: 'required: ray://HOST:10001 (the agent joins HOST:RAY_GCS_PORT) or the GCS address HOST:PORT',
    example: 'ray://head.example.net:10001',
    controllerSets: true,
  },
  RAY_GCS_PORT: {
    name: 'RAY_GCS_PORT',
    default: 6379,
    min: 1,
    max: 65535,
    meaning: "the head's GCS port, used with a ray:// address",
    example: '6379',
  },
  MANAGER_URL: {
    name: 'MANAGER_URL',
    default: undefined,
    meaning: "required: the manager's base URL or its .../api/register URL; https:// only",
    example: 'https://manager.example.net/api/register',
    controllerSets: true,
  },
  MANAGER_ALLOW_HTTP: {
    name: 'MANAGER_ALLOW_HTTP',
    default: 0,
    meaning: '1 allows http:// for a loopback manager (development only)',
    example: '1',
  },
  MANAGER_CA_FILE: {
    name: 'MANAGER_CA_FILE',
    default: undefined,
    meaning: "PEM file of a private CA that signed the manager's certificate (added to the public roots)",
    example: '/run/secrets/manager-ca.pem',
    controllerSets: true,
  },
  AGENT_TOKEN_FILE: {
    name: 'AGENT_TOKEN_FILE',
    default: undefined,
    meaning: 'file holding the enrollment token, needed only until the first registration',
    example: '/run/secrets/agent-token',
    controllerSets: true,
  },
  AGENT_TOKEN_FD: {
    name: 'AGENT_TOKEN_FD',
    default: undefined,
    meaning: "set by the image's entrypoint: the descriptor it hands the token over on, out of /proc/*/environ",
    example: '3',
    imageSets: true,
  },
  AGENT_TOKEN: {
    name: 'AGENT_TOKEN',
    default: undefined,
    meaning: 'the enrollment token itself; prefer AGENT_TOKEN_FILE (variables show in docker inspect)',
    example: 'the token the manager printed, 43 characters (better: AGENT_TOKEN_FILE)',
    controllerSets: true,
  },
  CPU_LIMIT: {
    name: 'CPU_LIMIT',
    default: undefined,
    meaning: "CPUs to offer, at most the container's cgroup limit (the default), else the host's",
    example: '2',
  },
  MEMORY_LIMIT: {
    name: 'MEMORY_LIMIT',
    default: undefined,
    meaning: "memory to offer (Docker-style size), at most the container's cgroup limit (the default), else the host's",
    example: '4g',
  },
  STATE_DIR: {
    name: 'STATE_DIR',
    default: STATE_DIR,
    meaning: 'a directory volume for the install ID and credentials',
    example: STATE_DIR,
    controllerSets: true,
  },
  STATUS_HOST: {
    name: 'STATUS_HOST',
    default: '0.0.0.0',
    meaning: "the status endpoint's address inside the container (publish it on 127.0.0.1 only)",
    example: '0.0.0.0',
  },
  STATUS_PORT: {
    name: 'STATUS_PORT',
    default: CONTAINER_STATUS_PORT,
    min: 1,
    max: 65535,
    meaning: "the status endpoint's port inside the container",
    example: String(CONTAINER_STATUS_PORT),
    controllerSets: true,
  },
  HEARTBEAT_INTERVAL: {
    name: 'HEARTBEAT_INTERVAL',
    default: 10,
    min: 1,
    max: 3600,
    meaning: "seconds between heartbeats; the manager's answer overrides it",
    example: '10',
  },
  DRAIN_DEADLINE: {
    name: 'DRAIN_DEADLINE',
    default: 25,
    min: 0,
    max: 86400,
    meaning: 'seconds running tasks get to finish on stop',
    example: '25',
    controllerSets: true,
  },
  NODE_IP_ADDRESS: {
    name: 'NODE_IP_ADDRESS',
    default: undefined,
    meaning: "the address other Ray nodes reach this node at; the container's address when unset",
    example: '100.64.0.7',
  },
  PROVIDER_NAME: {
    name: 'PROVIDER_NAME',
    default: undefined,
    meaning: "the name the manager shows; the container's host name when unset",
    example: 'alices-desktop',
  },
  LOG_LEVEL: { name: 'LOG_LEVEL', default: 'info', meaning: 'debug, info, warn or error', example: 'info' },
  RAY_NODE_MANAGER_PORT: {
    name: 'RAY_NODE_MANAGER_PORT',
    default: 8076,
    min: 1,
    max: 65535,
    meaning: "Ray's node manager port (pinned: the head connects to it)",
    example: '8076',
  },
  RAY_OBJECT_MANAGER_PORT: {
    name: 'RAY_OBJECT_MANAGER_PORT',
    default: 8077,
    min: 1,
    max: 65535,
    meaning: "Ray's object manager port (pinned: other nodes connect to it)",
    example: '8077',
  },
  RAY_MIN_WORKER_PORT: {
    name: 'RAY_MIN_WORKER_PORT',
    default: 10002,
    min: 1,
    max: 65535,
    meaning: "the first of Ray's worker ports",
    example: '10002',
  },
  RAY_MAX_WORKER_PORT: {
    name: 'RAY_MAX_WORKER_PORT',
    default: 10101,
    min: 1,
    max: 65535,
    meaning: "the last of Ray's worker ports, at least 8 above the first",
    example: '10101',
  },
  RAY_METRICS_EXPORT_PORT: {
    name: 'RAY_METRICS_EXPORT_PORT',
    default: 8080,
    min: 1,
    max: 65535,
    meaning: "Ray's metrics export port",
    example: '8080',
  },
  RAY_DASHBOARD_AGENT_GRPC_PORT: {
    name: 'RAY_DASHBOARD_AGENT_GRPC_PORT',
    default: 8078,
    min: 1,
    max: 65535,
    meaning: "Ray's dashboard agent gRPC port",
    example: '8078',
  },
  RAY_DASHBOARD_AGENT_LISTEN_PORT: {
    name: 'RAY_DASHBOARD_AGENT_LISTEN_PORT',
    default: 52365,
    min: 1,
    max: 65535,
    meaning: "Ray's dashboard agent HTTP port",
    example: '52365',
  },
  RAY_RUNTIME_ENV_AGENT_PORT: {
    name: 'RAY_RUNTIME_ENV_AGENT_PORT',
    default: 8079,
    min: 1,
    max: 65535,
    meaning: "Ray's runtime environment agent port",
    example: '8079',
  },
  RAY_GCS_RECONNECT_TIMEOUT: {
    name: 'RAY_GCS_RECONNECT_TIMEOUT',
    default: 60,
    min: 5,
    max: 3600,
    meaning: "seconds Ray's raylet waits for a lost head before it gives up",
    example: '60',
  },
  ACCEPT_WORK: {
    name: 'ACCEPT_WORK',
    default: 'any',
    meaning:
      'any: ordinary Ray tasks and gVisor sandboxes; sandboxed: only work that asks for the gvisor resource (Ray gets no CPUs of this node)',
    example: 'sandboxed',
    controllerSets: true,
  },
  SANDBOX_NETWORK: {
    name: SANDBOX_NETWORK_VARIABLE,
    default: 'off',
    meaning: 'on lets a gVisor sandbox have the network its job asks for; off gives every sandbox none',
    example: 'off',
    controllerSets: true,
  },
  TINI_SUBREAPER: {
    name: 'TINI_SUBREAPER',
    default: 1,
    meaning: "read by the image's tini: under --init it is not PID 1, and as a subreaper it still reaps Ray workers",
    example: '1',
    controllerSets: true,
  },
} as const satisfies Record<string, AgentEnvVar>;
export type AgentEnvName = keyof typeof AGENT_ENV;

/**
 * Variables the controller (or the image itself) sets; a person's extra variables may not set them or go around the
 * secret files.
 */
export const CONTROLLER_SET_ENV: readonly AgentEnvName[] = (Object.keys(AGENT_ENV) as AgentEnvName[]).filter((name) => {
  const row: AgentEnvVar = AGENT_ENV[name];
  return row.controllerSets === true || row.imageSets === true;
});

/** Ray schedules whole CPUs: `--num-cpus` is the limit rounded down, and at least one. */
export function rayCpusFor(cpus: number): number {
  // The epsilon keeps a limit that floating point puts a hair under a whole number (2 - 1e-12) at that number.
  return Math.max(1, Math.floor(cpus + 1e-9));
}

/** Ray refuses object stores below this (ray_constants.OBJECT_STORE_MINIMUM_MEMORY_BYTES). */
export const MIN_OBJECT_STORE_BYTES = 75 * MiB;
/**
 * Outside /dev/shm Ray 2.58 refuses an object store above this many bytes (REQUIRE_SHM_SIZE_THRESHOLD, 10 GB)
 * unless RAY_OBJECT_STORE_ALLOW_SLOW_STORAGE is set; below it, it quietly uses its temp dir under /tmp.
 */
export const MAX_SLOW_OBJECT_STORE_BYTES = 10 ** 10;
/** Ray's schedulable memory is never planned below this, so a task that asks for a little can still run. */
export const MIN_RAY_MEMORY_BYTES = 64 * MiB;
/** The object store's share of the memory limit (Ray's own default share, of the container instead of the host). */
const OBJECT_STORE_SHARE = { numerator: 3, denominator: 10 };
/** The store takes at most 9/10 of /dev/shm: plasma's allocator and other users of /dev/shm need headroom. */
const SHM_STORE_SHARE = { numerator: 9, denominator: 10 };

/** Ray's daemons and the agent: a quarter of the limit, from 256 MiB to 768 MiB. */
function reserveFor(memoryBytes: number): number {
  return Math.min(768 * MiB, Math.max(256 * MiB, Math.floor(memoryBytes / 4)));
}

/** The object store a memory limit gets when nothing else cuts it. */
export function fullObjectStoreBytes(memoryBytes: number): number {
  const share = Math.floor((memoryBytes * OBJECT_STORE_SHARE.numerator) / OBJECT_STORE_SHARE.denominator);
  return Math.max(MIN_OBJECT_STORE_BYTES, share);
}

/** How much of a /dev/shm of this size the object store may take. Whole-number arithmetic: no rounding surprises. */
export function objectStoreRoomInShm(shmBytes: number): number {
  return Math.floor((shmBytes * SHM_STORE_SHARE.numerator) / SHM_STORE_SHARE.denominator);
}

/** The /dev/shm (`--shm-size`, HostConfig.ShmSize) that gives this memory limit its full object store, in whole MiB. */
export function shmBytesFor(memoryBytes: number): number {
  const store = fullObjectStoreBytes(memoryBytes);
  return Math.ceil((store * SHM_STORE_SHARE.denominator) / SHM_STORE_SHARE.numerator / MiB) * MiB;
}

/** /tmp (a tmpfs under a read-only root) holds Ray's session files and logs: half the memory, at most 2 GiB, whole MiB. */
export function tmpfsBytesFor(memoryBytes: number): number {
  return Math.floor(Math.min(2 * GiB, memoryBytes / 2) / MiB) * MiB;
}

/**
 * Where the object store lives, and what cut it below the full store:
 * - `full`: the full store, in /dev/shm (or /dev/shm's size is unknown);
 * - `shm`: cut to what /dev/shm can hold, still in /dev/shm;
 * - `tmp`: /dev/shm cannot hold even Ray's minimum, so Ray keeps the store in its temp dir under /tmp (slower; a
 *   tmpfs there counts against the memory limit, as /dev/shm does);
 * - `tmp_space`: as `tmp`, and cut to half of /tmp's free space, or to Ray's 10 GB ceiling for slow storage.
 */
export type ObjectStoreCut = 'full' | 'shm' | 'tmp' | 'tmp_space';

export interface RayMemoryPlan {
  /** The memory limit planned for. */
  memoryBytes: number;
  /** Left to Ray's daemons (raylet, agents) and the agent: never given to Ray as a resource. */
  reserveBytes: number;
  /** `--object-store-memory`. */
  objectStoreBytes: number;
  /** `--memory`: what tasks and actors may ask for. */
  rayMemoryBytes: number;
  /** Where Ray will put it, by Ray's own rule: /dev/shm when it has room for the whole store, else /tmp. */
  objectStoreIn: ObjectStoreLocation;
  cut: ObjectStoreCut;
  /** The store this memory limit would get with a large enough /dev/shm. */
  fullObjectStoreBytes: number;
  /** The /dev/shm that gives the full store (`shmBytesFor`). */
  shmBytesWanted: number;
  /** The limit is below MIN_MEMORY_BYTES: the plan still fits, by shrinking the reserve, but Ray will struggle. */
  belowMinimum: boolean;
}

/**
 * How a memory limit is split between Ray's object store, Ray's schedulable memory and a reserve for Ray's own
 * daemons, so that the three never add up to more than the limit, wherever the object store ends up.
 * `shmBytes`: the size of /dev/shm (undefined: unknown, assumed large enough); `tmpFreeBytes`: free space in /tmp,
 * where Ray puts the store when /dev/shm is too small (undefined: unknown).
 */
export function rayMemoryPlan(
  memoryBytes: number,
  shmBytes: number | undefined,
  tmpFreeBytes?: number | undefined,
): RayMemoryPlan {
  const full = fullObjectStoreBytes(memoryBytes);
  let objectStore = full;
  let cut: ObjectStoreCut = 'full';
  if (shmBytes !== undefined && objectStoreRoomInShm(shmBytes) < full) {
    const room = objectStoreRoomInShm(shmBytes);
    if (room >= MIN_OBJECT_STORE_BYTES) {
      objectStore = room;
      cut = 'shm';
    } else {
      // Ray's own choice (services.determine_plasma_store_config): a store larger than /dev/shm goes to its temp dir.
      cut = 'tmp';
      const tmpRoom = tmpFreeBytes === undefined ? Number.POSITIVE_INFINITY : Math.floor(tmpFreeBytes / 2);
      const bounded = Math.max(MIN_OBJECT_STORE_BYTES, Math.min(full, tmpRoom, MAX_SLOW_OBJECT_STORE_BYTES));
      if (bounded < full) {
        objectStore = bounded;
        cut = 'tmp_space';
      }
    }
  }
  // The store is counted against the limit wherever it lives (/dev/shm and a /tmp tmpfs are both charged to the
  // container's memory), so the reserve gives way before the sum may pass the limit.
  let reserve = reserveFor(memoryBytes);
  if (memoryBytes - reserve - objectStore < MIN_RAY_MEMORY_BYTES)
    reserve = Math.max(0, memoryBytes - objectStore - MIN_RAY_MEMORY_BYTES);
  const rayMemory = Math.max(1, memoryBytes - reserve - objectStore);
  return {
    memoryBytes,
    reserveBytes: reserve,
    objectStoreBytes: objectStore,
    rayMemoryBytes: rayMemory,
    objectStoreIn: shmBytes === undefined || shmBytes >= objectStore ? 'shm' : 'tmp',
    cut,
    fullObjectStoreBytes: full,
    shmBytesWanted: shmBytesFor(memoryBytes),
    belowMinimum: memoryBytes < MIN_MEMORY_BYTES,
  };
}
