import { fileURLToPath } from 'node:url';
import { AGENT_ENV, CONTAINER_STATUS_PORT, GVISOR_MASKED_PATHS, STATE_DIR } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { rayResources } from '../../../agent-image/src/limits/ray-resources.js';
import { rayEnvironment, rayStartArgs } from '../../../agent-image/src/supervisor/ray-node.js';
import {
  AGENT_SECCOMP_OPTION,
  type AgentSpec,
  createOptions,
} from '../../../controller/src/container/agent-container-spec.js';

/**
 * Both arms of the nodes suite come from the controller's own recipe (createOptions): the agent container exactly as
 * the tray app makes it, and the plain Ray container with the same limits and hardening, the same image, and `ray`
 * as its entry point with the arguments the agent itself would pass to `ray start`. Nothing is copied by hand, so a
 * new flag in the controller reaches both arms (or stops the bench: see `runFlags`).
 */
export interface ArmShape {
  cpus: number;
  memoryBytes: number;
  /** `--cpuset-cpus` for both arms (the same CPUs), or null to leave placement to the kernel. */
  cpuset: string | null;
  drainDeadlineSeconds: number;
}

export const STATUS_PORT = CONTAINER_STATUS_PORT;

const MiB = 1024 ** 2;
const SECCOMP_FILE = fileURLToPath(new URL('../../../protocol/src/seccomp-gvisor.json', import.meta.url));

/** The plain node's Ray ports: the agent's defaults + 1000, so both nodes can be alive on the one loopback. */
const PLAIN_PORT_SHIFT = 1000;

function agentSpec(name: string, image: string, gcs: string, managerUrl: string, shape: ArmShape, network: string) {
  const spec: AgentSpec = {
    image,
    clusterAddress: gcs,
    managerUrl,
    cpus: shape.cpus,
    memoryBytes: shape.memoryBytes,
    statusPort: STATUS_PORT,
    drainDeadlineSeconds: shape.drainDeadlineSeconds,
    tunnel: false,
    network,
    name,
  };
  return createOptions(spec);
}

/**
 * `docker run` flags for a controller-made create options object. Every HostConfig field is mapped or refused:
 * an unknown field would otherwise silently leave one arm unlike what the tray app runs.
 */
export function runFlags(options: Dockerode.ContainerCreateOptions, env: Record<string, string>): string[] {
  const flags: string[] = [];
  const host = options.HostConfig ?? {};
  for (const [key, value] of Object.entries(host)) {
    switch (key) {
      case 'NanoCpus':
        flags.push(`--cpus=${(value as number) / 1e9}`);
        break;
      case 'Memory':
        flags.push(`--memory=${value as number}b`);
        break;
      case 'MemorySwap':
        flags.push(`--memory-swap=${value as number}b`);
        break;
      case 'ShmSize':
        flags.push(`--shm-size=${value as number}b`);
        break;
      case 'Tmpfs':
        for (const [path, opts] of Object.entries(value as Record<string, string>))
          flags.push(`--tmpfs=${path}:${opts}`);
        break;
      case 'ReadonlyRootfs':
        if (value) flags.push('--read-only');
        break;
      case 'CapDrop':
        for (const cap of value as string[]) flags.push(`--cap-drop=${cap}`);
        break;
      case 'SecurityOpt':
        // The API takes the seccomp profile's JSON text, the CLI a file: the same profile, from protocol's copy.
        for (const opt of value as string[])
          flags.push(`--security-opt=${opt === AGENT_SECCOMP_OPTION ? `seccomp=${SECCOMP_FILE}` : opt}`);
        break;
      // The CLI cannot name masks; systempaths=unconfined drops them all (also /sys/firmware's, which the API
      // keeps): the same for what runs there, a little wider than the tray app.
      case 'MaskedPaths':
        if (JSON.stringify(value) !== JSON.stringify(GVISOR_MASKED_PATHS))
          throw new Error('bench/suites/nodes: the controller masks other paths than the sandbox contract; map them');
        break;
      case 'ReadonlyPaths':
        flags.push('--security-opt=systempaths=unconfined');
        break;
      case 'Init':
        if (value) flags.push('--init');
        break;
      case 'PidsLimit':
        flags.push(`--pids-limit=${value as number}`);
        break;
      case 'NetworkMode':
        flags.push(`--network=${value as string}`);
        break;
      case 'Mounts':
        for (const mount of value as Dockerode.MountSettings[])
          flags.push(
            `--mount=type=${mount.Type},source=${mount.Source},target=${mount.Target}${mount.ReadOnly ? ',readonly' : ''}`,
          );
        break;
      // The bench signals the container's PID 1 itself (as `docker stop` does); a restart policy would bring a
      // stopped node back in the middle of the next measurement.
      case 'RestartPolicy':
        break;
      // Docker refuses published ports on a joined network namespace; the bench reaches the status endpoint on the
      // shared loopback instead.
      case 'PortBindings':
        break;
      default:
        throw new Error(`bench/suites/nodes: the controller's HostConfig.${key} has no docker run flag here; map it`);
    }
  }
  if (options.User) flags.push(`--user=${options.User}`);
  if (options.StopTimeout !== undefined) flags.push(`--stop-timeout=${options.StopTimeout}`);
  for (const [key, value] of Object.entries(env)) flags.push('-e', `${key}=${value}`);
  return flags;
}

function envOf(options: Dockerode.ContainerCreateOptions): Record<string, string> {
  return Object.fromEntries(
    (options.Env ?? []).map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  );
}

/** The agent container: the controller's recipe, with the bench's manager CA and token mounted at /certs. */
export function agentRunArgs(input: {
  name: string;
  image: string;
  gcs: string;
  managerUrl: string;
  shape: ArmShape;
  network: string;
  certsDir: string;
  extraFlags: string[];
}): string[] {
  const options = agentSpec(input.name, input.image, input.gcs, input.managerUrl, input.shape, input.network);
  const env = {
    ...envOf(options),
    [AGENT_ENV.AGENT_TOKEN_FILE.name]: '/certs/enrollment-token',
    [AGENT_ENV.MANAGER_CA_FILE.name]: '/certs/ca.pem',
    NODE_IP_ADDRESS: '127.0.0.1',
    // On the shared loopback the status endpoint must not listen on every address of the namespace.
    STATUS_HOST: '127.0.0.1',
  };
  return [
    ...runFlags(options, env),
    ...(input.shape.cpuset ? [`--cpuset-cpus=${input.shape.cpuset}`] : []),
    '-v',
    `${input.certsDir}:/certs:ro`,
    ...input.extraFlags,
    input.image,
  ];
}

/**
 * The baseline: a plain Ray worker container from the same image and the same recipe (limits, /tmp tmpfs, shm,
 * read-only root, no capabilities, no-new-privileges, init, uid 1000), without the agent's state volume, running
 * `ray start` with the CPU, memory and object-store figures, label, resource and environment the agent computes
 * for the same limits (its own functions), on ports moved off the agent's.
 */
export function plainRunArgs(input: {
  name: string;
  image: string;
  gcs: string;
  shape: ArmShape;
  network: string;
  extraFlags: string[];
}): { args: string[]; rayArgs: string[] } {
  const options = agentSpec(input.name, input.image, input.gcs, 'https://127.0.0.1/unused', input.shape, input.network);
  // No state volume (plain Ray keeps no state); every other mount (e.g. a disk for Ray's spilling) stays, so both
  // arms write to the same kind of storage.
  const mounts = (options.HostConfig?.Mounts ?? []).filter((mount) => mount.Target !== STATE_DIR);
  options.HostConfig = { ...options.HostConfig, Mounts: mounts };
  const shmBytes = options.HostConfig.ShmSize as number;
  const resources = rayResources({
    cpus: input.shape.cpus,
    memoryBytes: input.shape.memoryBytes,
    source: 'cgroup',
    shmBytes,
    tmpFreeBytes: tmpfsSize(options),
  });
  const port = (name: keyof typeof AGENT_ENV) => Number(AGENT_ENV[name].default) + PLAIN_PORT_SHIFT;
  const [host, gcsPort] = input.gcs.split(':');
  const rayOptions = {
    rayBin: 'ray',
    gcs: { host: host ?? '127.0.0.1', port: Number(gcsPort) },
    resources,
    ports: {
      nodeManager: port('RAY_NODE_MANAGER_PORT'),
      objectManager: port('RAY_OBJECT_MANAGER_PORT'),
      minWorker: port('RAY_MIN_WORKER_PORT'),
      maxWorker: port('RAY_MAX_WORKER_PORT'),
      metricsExport: port('RAY_METRICS_EXPORT_PORT'),
      dashboardAgentGrpc: port('RAY_DASHBOARD_AGENT_GRPC_PORT'),
      dashboardAgentListen: port('RAY_DASHBOARD_AGENT_LISTEN_PORT'),
      runtimeEnvAgent: port('RAY_RUNTIME_ENV_AGENT_PORT'),
    },
    nodeIpAddress: '127.0.0.1',
    providerId: 'bench-plain',
    drainDeadlineSeconds: input.shape.drainDeadlineSeconds,
    gcsReconnectTimeoutSeconds: Number(AGENT_ENV.RAY_GCS_RECONNECT_TIMEOUT.default),
  };
  // Only what the agent adds for Ray (an empty base: the image's own ENV, PATH and HOME, stays as it is).
  const env = rayEnvironment(rayOptions, {}) as Record<string, string>;
  const rayArgs = rayStartArgs(rayOptions);
  return {
    args: [
      ...runFlags(options, env),
      ...(input.shape.cpuset ? [`--cpuset-cpus=${input.shape.cpuset}`] : []),
      ...input.extraFlags,
      '--entrypoint',
      'ray',
      input.image,
      ...rayArgs,
    ],
    rayArgs,
  };
}

function tmpfsSize(options: Dockerode.ContainerCreateOptions): number | undefined {
  const tmp = (options.HostConfig?.Tmpfs as Record<string, string> | undefined)?.['/tmp'];
  const size = tmp ? /size=(\d+)m/.exec(tmp)?.[1] : undefined;
  return size ? Number(size) * MiB : undefined;
}

/** The recipe's user and hardening without network or mounts: for probes that run beside the arms. */
export function probeFlags(image: string, shape: ArmShape): string[] {
  const options = agentSpec('probe', image, '127.0.0.1:6379', 'https://127.0.0.1/unused', shape, 'none');
  const host = { ...options.HostConfig };
  delete host.NetworkMode;
  delete host.Mounts;
  return runFlags({ ...options, HostConfig: host, StopTimeout: undefined }, {});
}
