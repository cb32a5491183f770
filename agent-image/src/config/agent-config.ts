import { closeSync, existsSync, readFileSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { AcceptWork, AGENT_ENV, type AgentEnvName, MIN_MEMORY_BYTES } from '@ray-agent/protocol';
import { z } from 'zod';
import { type ManagerEndpoints, parseManagerUrl } from './manager-url.js';
import { parseCpus, parseMemory } from './quantity.js';
import { type GcsAddress, isPort, parseRayHead } from './ray-head.js';

/**
 * Everything the agent reads from its environment, validated before any network call. A bad variable becomes
 * one line naming the variable, what is wrong with its value, and a good example.
 */
export interface AgentConfig {
  gcs: GcsAddress;
  rayHead: string;
  manager: ManagerEndpoints;
  managerCaFile: string | undefined;
  /** Enrollment token; kept out of logs, status and Ray's environment. */
  token: string | undefined;
  cpuLimit: number | undefined;
  memoryLimit: number | undefined;
  statusHost: string;
  statusPort: number;
  heartbeatIntervalSeconds: number;
  stateDir: string;
  drainDeadlineSeconds: number;
  nodeIpAddress: string | undefined;
  providerName: string | undefined;
  ports: RayPorts;
  gcsReconnectTimeoutSeconds: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** `sandboxed`: Ray gets no CPUs here, only the gvisor slots (when the self-test passed). */
  acceptWork: AcceptWork;
  /** Whether a sandbox may have the network its job asks for (read by the image's runsc wrapper too). */
  sandboxNetwork: boolean;
}

export interface RayPorts {
  nodeManager: number;
  objectManager: number;
  minWorker: number;
  maxWorker: number;
  metricsExport: number;
  dashboardAgentGrpc: number;
  dashboardAgentListen: number;
  runtimeEnvAgent: number;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
    example: string,
  ) {
    super(`${variable}: ${problem} (e.g. ${example})`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** The variables read as bounded whole numbers: their rows carry `min` and `max`. */
type IntVariable = {
  [Name in AgentEnvName]: (typeof AGENT_ENV)[Name] extends { min: number; max: number } ? Name : never;
}[AgentEnvName];

const TOKEN = z
  .string()
  .min(16, 'is shorter than 16 characters')
  .max(4096, 'is longer than 4096 characters')
  .regex(/^[\x21-\x7e]+$/, 'contains spaces or control characters');

/** `NAME=example`, the good value an error message ends with. */
function exampleOf(name: AgentEnvName): string {
  return `${name}=${AGENT_ENV[name].example}`;
}

export function loadConfig(env: Env): AgentConfig {
  const read = (name: AgentEnvName) => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  };
  /** A whole-number variable, bounded and defaulted by its row of the contract. */
  const int = (name: IntVariable) => {
    const { default: fallback, min, max } = AGENT_ENV[name];
    const text = read(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!/^\s*\d+\s*$/.test(text) || value < min || value > max)
      throw new ConfigError(name, `"${text}" must be a whole number from ${min} to ${max}`, exampleOf(name));
    return value;
  };
  const flag = (name: AgentEnvName) => {
    const text = read(name);
    if (text === undefined) return false;
    if (/^(1|true|yes)$/i.test(text)) return true;
    if (/^(0|false|no)$/i.test(text)) return false;
    throw new ConfigError(name, `"${text}" must be 1 or 0`, `${name}=1`);
  };

  const gcsPort = int('RAY_GCS_PORT');
  const rayHead = read('RAY_HEAD');
  if (rayHead === undefined) throw new ConfigError('RAY_HEAD', 'is not set', exampleOf('RAY_HEAD'));
  const gcs = parseRayHead(rayHead, gcsPort);
  if (typeof gcs === 'string') throw new ConfigError('RAY_HEAD', `"${rayHead}" ${gcs}`, exampleOf('RAY_HEAD'));

  const managerText = read('MANAGER_URL');
  if (managerText === undefined) throw new ConfigError('MANAGER_URL', 'is not set', exampleOf('MANAGER_URL'));
  const manager = parseManagerUrl(managerText, flag('MANAGER_ALLOW_HTTP'));
  if (typeof manager === 'string')
    throw new ConfigError('MANAGER_URL', `"${redactUrl(managerText)}" ${manager}`, exampleOf('MANAGER_URL'));

  const managerCaFile = read('MANAGER_CA_FILE');
  if (managerCaFile !== undefined) readable('MANAGER_CA_FILE', managerCaFile, exampleOf('MANAGER_CA_FILE'));

  const cpuText = read('CPU_LIMIT');
  let cpuLimit: number | undefined;
  if (cpuText !== undefined) {
    const cpus = parseCpus(cpuText);
    if (typeof cpus === 'string')
      throw new ConfigError('CPU_LIMIT', `"${cpuText}" ${cpus}`, `${exampleOf('CPU_LIMIT')} or CPU_LIMIT=1.5`);
    cpuLimit = cpus;
  }
  const memoryText = read('MEMORY_LIMIT');
  let memoryLimit: number | undefined;
  if (memoryText !== undefined) {
    const bytes = parseMemory(memoryText);
    if (typeof bytes === 'string')
      throw new ConfigError(
        'MEMORY_LIMIT',
        `"${memoryText}" ${bytes}`,
        `${exampleOf('MEMORY_LIMIT')} or MEMORY_LIMIT=512m`,
      );
    if (bytes < MIN_MEMORY_BYTES)
      throw new ConfigError(
        'MEMORY_LIMIT',
        `"${memoryText}" is below the ${MIN_MEMORY_BYTES / 1024 ** 2}m a Ray node needs`,
        exampleOf('MEMORY_LIMIT'),
      );
    memoryLimit = bytes;
  }

  const nodeIpAddress = read('NODE_IP_ADDRESS');
  if (nodeIpAddress !== undefined && !/^(\d{1,3}\.){3}\d{1,3}$|^[0-9a-fA-F:]+$/.test(nodeIpAddress))
    throw new ConfigError('NODE_IP_ADDRESS', `"${nodeIpAddress}" is not an IP address`, exampleOf('NODE_IP_ADDRESS'));

  const providerName = read('PROVIDER_NAME');
  if (providerName !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(providerName))
    throw new ConfigError(
      'PROVIDER_NAME',
      `"${providerName}" must be 1-63 letters, digits, dots, dashes`,
      exampleOf('PROVIDER_NAME'),
    );

  const logLevel = (read('LOG_LEVEL') ?? AGENT_ENV.LOG_LEVEL.default).toLowerCase();
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel))
    throw new ConfigError('LOG_LEVEL', `"${logLevel}" must be debug, info, warn or error`, exampleOf('LOG_LEVEL'));

  const statusHost = read('STATUS_HOST') ?? AGENT_ENV.STATUS_HOST.default;
  if (!/^[0-9a-fA-F:.]+$/.test(statusHost))
    throw new ConfigError('STATUS_HOST', `"${statusHost}" must be an IP address`, exampleOf('STATUS_HOST'));

  const acceptWork = (read('ACCEPT_WORK') ?? AGENT_ENV.ACCEPT_WORK.default).toLowerCase();
  if (!AcceptWork.safeParse(acceptWork).success)
    throw new ConfigError('ACCEPT_WORK', `"${acceptWork}" must be any or sandboxed`, exampleOf('ACCEPT_WORK'));
  const sandboxNetwork = read('SANDBOX_NETWORK') ?? AGENT_ENV.SANDBOX_NETWORK.default;
  if (sandboxNetwork !== 'on' && sandboxNetwork !== 'off')
    throw new ConfigError('SANDBOX_NETWORK', `"${sandboxNetwork}" must be on or off`, exampleOf('SANDBOX_NETWORK'));

  const ports: RayPorts = {
    nodeManager: int('RAY_NODE_MANAGER_PORT'),
    objectManager: int('RAY_OBJECT_MANAGER_PORT'),
    minWorker: int('RAY_MIN_WORKER_PORT'),
    maxWorker: int('RAY_MAX_WORKER_PORT'),
    metricsExport: int('RAY_METRICS_EXPORT_PORT'),
    dashboardAgentGrpc: int('RAY_DASHBOARD_AGENT_GRPC_PORT'),
    dashboardAgentListen: int('RAY_DASHBOARD_AGENT_LISTEN_PORT'),
    runtimeEnvAgent: int('RAY_RUNTIME_ENV_AGENT_PORT'),
  };
  if (ports.maxWorker - ports.minWorker < 8)
    throw new ConfigError(
      'RAY_MAX_WORKER_PORT',
      `must be at least 8 above RAY_MIN_WORKER_PORT (${ports.minWorker})`,
      `RAY_MAX_WORKER_PORT=${ports.minWorker + 99}`,
    );

  const statusPort = int('STATUS_PORT');
  if (!isPort(statusPort)) throw new ConfigError('STATUS_PORT', 'is not a port', exampleOf('STATUS_PORT'));
  return {
    gcs,
    rayHead,
    manager,
    managerCaFile,
    token: readToken(
      read('AGENT_TOKEN'),
      read('AGENT_TOKEN_FILE'),
      // Set by the image's entrypoint only (agent-image/entrypoint.sh), so not a row of the contract.
      read('AGENT_TOKEN_FD')?.trim(),
      read('STATE_DIR') ?? AGENT_ENV.STATE_DIR.default,
    ),
    cpuLimit,
    memoryLimit,
    statusHost,
    statusPort,
    heartbeatIntervalSeconds: int('HEARTBEAT_INTERVAL'),
    stateDir: read('STATE_DIR') ?? AGENT_ENV.STATE_DIR.default,
    drainDeadlineSeconds: int('DRAIN_DEADLINE'),
    nodeIpAddress,
    providerName,
    ports,
    gcsReconnectTimeoutSeconds: int('RAY_GCS_RECONNECT_TIMEOUT'),
    logLevel: logLevel as AgentConfig['logLevel'],
    acceptWork: acceptWork as AcceptWork,
    sandboxNetwork: sandboxNetwork === 'on',
  };
}

function readToken(
  inline: string | undefined,
  file: string | undefined,
  fd: string | undefined,
  stateDir: string,
): string | undefined {
  // The image's entrypoint moves AGENT_TOKEN out of the environment (Ray tasks can read /proc/*/environ) and
  // hands it over on an inherited pipe instead.
  if (fd !== undefined) inline = readTokenFd(fd) || undefined;
  if (inline !== undefined && file !== undefined)
    throw new ConfigError(
      'AGENT_TOKEN',
      'and AGENT_TOKEN_FILE are both set; keep only the file',
      exampleOf('AGENT_TOKEN_FILE'),
    );
  if (file !== undefined) {
    // The agent removes the token file from its state volume once registered: its absence there is expected.
    if (!existsSync(file) && isInside(file, stateDir)) return undefined;
    const text = readable('AGENT_TOKEN_FILE', file, exampleOf('AGENT_TOKEN_FILE')).trim();
    // An empty file is what a controller without a token writes: no token, not a bad one.
    return text === '' ? undefined : checkToken('AGENT_TOKEN_FILE', text);
  }
  return inline === undefined ? undefined : checkToken('AGENT_TOKEN', inline.trim());
}

/** Reads the token pipe to its end and closes it, so the descriptor is not inherited by Ray's processes. */
function readTokenFd(fd: string): string {
  const example = 'AGENT_TOKEN_FD=3, set by the image entrypoint (set AGENT_TOKEN or AGENT_TOKEN_FILE instead)';
  if (!/^\d+$/.test(fd) || Number(fd) < 3)
    throw new ConfigError('AGENT_TOKEN_FD', `"${fd}" is not a file descriptor above 2`, example);
  try {
    return readFileSync(Number(fd), 'utf8').trim();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError('AGENT_TOKEN_FD', `descriptor ${fd} cannot be read (${code})`, example);
  } finally {
    try {
      closeSync(Number(fd));
    } catch {
      // Already closed or never open: nothing is left to leak.
    }
  }
}

function isInside(path: string, dir: string): boolean {
  const root = resolve(dir);
  return resolve(path).startsWith(root.endsWith(sep) ? root : `${root}${sep}`);
}

function checkToken(variable: string, token: string): string {
  const parsed = TOKEN.safeParse(token);
  // The token itself is never echoed: only what is wrong with it.
  if (!parsed.success)
    throw new ConfigError(
      variable,
      `the token ${parsed.error.issues[0]?.message}`,
      'the token the manager printed, 43 characters',
    );
  return parsed.data;
}

function readable(variable: string, path: string, example: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? 'is not readable by this user'
          : `cannot be read (${code})`;
    throw new ConfigError(variable, `file "${path}" ${why}`, example);
  }
}

/** Strips user info from a URL before it is echoed anywhere. */
export function redactUrl(text: string): string {
  return text.replace(/\/\/[^/@]*@/, '//***@');
}
