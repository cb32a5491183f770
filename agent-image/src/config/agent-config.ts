import { readFileSync } from 'node:fs';
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

const TOKEN = z
  .string()
  .min(16, 'is shorter than 16 characters')
  .max(4096, 'is longer than 4096 characters')
  .regex(/^[\x21-\x7e]+$/, 'contains spaces or control characters');

export function loadConfig(env: Env): AgentConfig {
  const read = (name: string) => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  };
  const int = (name: string, fallback: number, min: number, max: number, example: string) => {
    const text = read(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!/^\s*\d+\s*$/.test(text) || value < min || value > max)
      throw new ConfigError(name, `"${text}" must be a whole number from ${min} to ${max}`, example);
    return value;
  };
  const port = (name: string, fallback: number) => int(name, fallback, 1, 65535, `${name}=${fallback}`);
  const flag = (name: string) => {
    const text = read(name);
    if (text === undefined) return false;
    if (/^(1|true|yes)$/i.test(text)) return true;
    if (/^(0|false|no)$/i.test(text)) return false;
    throw new ConfigError(name, `"${text}" must be 1 or 0`, `${name}=1`);
  };

  const gcsPort = port('RAY_GCS_PORT', 6379);
  const rayHead = read('RAY_HEAD');
  if (rayHead === undefined) throw new ConfigError('RAY_HEAD', 'is not set', 'RAY_HEAD=ray://head.example.net:10001');
  const gcs = parseRayHead(rayHead, gcsPort);
  if (typeof gcs === 'string')
    throw new ConfigError('RAY_HEAD', `"${rayHead}" ${gcs}`, 'RAY_HEAD=ray://head.example.net:10001');

  const managerText = read('MANAGER_URL');
  const managerExample = 'MANAGER_URL=https://manager.example.net/api/register';
  if (managerText === undefined) throw new ConfigError('MANAGER_URL', 'is not set', managerExample);
  const manager = parseManagerUrl(managerText, flag('MANAGER_ALLOW_HTTP'));
  if (typeof manager === 'string')
    throw new ConfigError('MANAGER_URL', `"${redactUrl(managerText)}" ${manager}`, managerExample);

  const managerCaFile = read('MANAGER_CA_FILE');
  if (managerCaFile !== undefined)
    readable('MANAGER_CA_FILE', managerCaFile, 'MANAGER_CA_FILE=/run/secrets/manager-ca.pem');

  const cpuText = read('CPU_LIMIT');
  let cpuLimit: number | undefined;
  if (cpuText !== undefined) {
    const cpus = parseCpus(cpuText);
    if (typeof cpus === 'string')
      throw new ConfigError('CPU_LIMIT', `"${cpuText}" ${cpus}`, 'CPU_LIMIT=2 or CPU_LIMIT=1.5');
    cpuLimit = cpus;
  }
  const memoryText = read('MEMORY_LIMIT');
  let memoryLimit: number | undefined;
  if (memoryText !== undefined) {
    const bytes = parseMemory(memoryText);
    if (typeof bytes === 'string')
      throw new ConfigError('MEMORY_LIMIT', `"${memoryText}" ${bytes}`, 'MEMORY_LIMIT=4g or MEMORY_LIMIT=512m');
    if (bytes < 512 * 1024 ** 2)
      throw new ConfigError('MEMORY_LIMIT', `"${memoryText}" is below the 512m a Ray node needs`, 'MEMORY_LIMIT=2g');
    memoryLimit = bytes;
  }

  const nodeIpAddress = read('NODE_IP_ADDRESS');
  if (nodeIpAddress !== undefined && !/^(\d{1,3}\.){3}\d{1,3}$|^[0-9a-fA-F:]+$/.test(nodeIpAddress))
    throw new ConfigError('NODE_IP_ADDRESS', `"${nodeIpAddress}" is not an IP address`, 'NODE_IP_ADDRESS=100.64.0.7');

  const providerName = read('PROVIDER_NAME');
  if (providerName !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(providerName))
    throw new ConfigError(
      'PROVIDER_NAME',
      `"${providerName}" must be 1-63 letters, digits, dots, dashes`,
      'PROVIDER_NAME=alices-desktop',
    );

  const logLevel = (read('LOG_LEVEL') ?? 'info').toLowerCase();
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel))
    throw new ConfigError('LOG_LEVEL', `"${logLevel}" must be debug, info, warn or error`, 'LOG_LEVEL=info');

  const statusHost = read('STATUS_HOST') ?? '0.0.0.0';
  if (!/^[0-9a-fA-F:.]+$/.test(statusHost))
    throw new ConfigError('STATUS_HOST', `"${statusHost}" must be an IP address`, 'STATUS_HOST=0.0.0.0');

  const ports: RayPorts = {
    nodeManager: port('RAY_NODE_MANAGER_PORT', 8076),
    objectManager: port('RAY_OBJECT_MANAGER_PORT', 8077),
    minWorker: port('RAY_MIN_WORKER_PORT', 10002),
    maxWorker: port('RAY_MAX_WORKER_PORT', 10101),
    metricsExport: port('RAY_METRICS_EXPORT_PORT', 8080),
    dashboardAgentGrpc: port('RAY_DASHBOARD_AGENT_GRPC_PORT', 8078),
    dashboardAgentListen: port('RAY_DASHBOARD_AGENT_LISTEN_PORT', 52365),
    runtimeEnvAgent: port('RAY_RUNTIME_ENV_AGENT_PORT', 8079),
  };
  if (ports.maxWorker - ports.minWorker < 8)
    throw new ConfigError(
      'RAY_MAX_WORKER_PORT',
      `must be at least 8 above RAY_MIN_WORKER_PORT (${ports.minWorker})`,
      `RAY_MAX_WORKER_PORT=${ports.minWorker + 99}`,
    );

  const config: AgentConfig = {
    gcs,
    rayHead,
    manager,
    managerCaFile,
    token: readToken(read('AGENT_TOKEN'), read('AGENT_TOKEN_FILE')),
    cpuLimit,
    memoryLimit,
    statusHost,
    statusPort: port('STATUS_PORT', 8765),
    heartbeatIntervalSeconds: int('HEARTBEAT_INTERVAL', 10, 1, 3600, 'HEARTBEAT_INTERVAL=10'),
    stateDir: read('STATE_DIR') ?? '/var/lib/ray-agent',
    drainDeadlineSeconds: int('DRAIN_DEADLINE', 25, 0, 86400, 'DRAIN_DEADLINE=25'),
    nodeIpAddress,
    providerName,
    ports,
    gcsReconnectTimeoutSeconds: int('RAY_GCS_RECONNECT_TIMEOUT', 60, 5, 3600, 'RAY_GCS_RECONNECT_TIMEOUT=60'),
    logLevel: logLevel as AgentConfig['logLevel'],
  };
  if (!isPort(config.statusPort)) throw new ConfigError('STATUS_PORT', 'is not a port', 'STATUS_PORT=8765');
  return config;
}

function readToken(inline: string | undefined, file: string | undefined): string | undefined {
  if (inline !== undefined && file !== undefined)
    throw new ConfigError(
      'AGENT_TOKEN',
      'and AGENT_TOKEN_FILE are both set; keep only the file',
      'AGENT_TOKEN_FILE=/run/secrets/agent-token',
    );
  if (file !== undefined) {
    const text = readable('AGENT_TOKEN_FILE', file, 'AGENT_TOKEN_FILE=/run/secrets/agent-token');
    return checkToken('AGENT_TOKEN_FILE', text.trim());
  }
  return inline === undefined ? undefined : checkToken('AGENT_TOKEN', inline.trim());
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
