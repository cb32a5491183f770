import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode } from '@ray-agent/protocol';
import { type AgentConfig, ConfigError, loadConfig } from './config/agent-config.js';
import { formatGcsAddress } from './config/ray-head.js';
import { cgroupReader, hostCpus, hostMemory, shmSize } from './limits/cgroup.js';
import { rayResources } from './limits/ray-resources.js';
import { createLogger } from './log.js';
import { CorruptCredentialsError, StateDirError, StateStore } from './state/state-store.js';
import { createMetrics } from './status/metrics.js';
import { StatusModel } from './status/status-model.js';
import { buildStatusServer } from './status/status-server.js';
import { AgentSupervisor } from './supervisor/agent-supervisor.js';
import { localVersions } from './supervisor/host-facts.js';

declare const AGENT_VERSION: string;
const VERSION = typeof AGENT_VERSION === 'string' ? AGENT_VERSION : '0.0.0-dev';
const RAY_BIN = process.env.RAY_AGENT_RAY_BIN ?? 'ray';
const PYTHON = process.env.RAY_AGENT_PYTHON ?? 'python3';

/** Why a file cannot be created in `dir`, or undefined when it can. */
function tmpUnwritable(dir: string): string | undefined {
  try {
    rmSync(mkdtempSync(join(dir, '.ray-agent-probe-')), { recursive: true });
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

function fatal(code: number, line: string): never {
  // One line, for a person reading `docker logs`.
  process.stderr.write(`ray-agent: ${line}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let config: AgentConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) fatal(ExitCode.badConfig, error.message);
    throw error;
  }
  const log = createLogger(config.logLevel);
  // A stop can come while the agent is still starting (before Ray or the supervisor exist): exit cleanly then too.
  let onStop: (signal: NodeJS.Signals) => void = (signal) => {
    log.info({ signal }, 'stopped while starting');
    log.flush();
    process.exit(ExitCode.ok);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => onStop(signal));

  const cgroup = cgroupReader();
  const cpus = config.cpuLimit ?? cgroup.cpuLimit() ?? hostCpus();
  const memoryBytes = config.memoryLimit ?? cgroup.memoryLimit() ?? hostMemory();
  const source =
    config.cpuLimit !== undefined || config.memoryLimit !== undefined
      ? 'env'
      : cgroup.memoryLimit() !== undefined || cgroup.cpuLimit() !== undefined
        ? 'cgroup'
        : 'host';
  const shmBytes = shmSize();
  const resources = rayResources({ cpus, memoryBytes, source, shmBytes });

  const store = new StateStore(config.stateDir);
  try {
    store.preflight();
  } catch (error) {
    if (error instanceof StateDirError) fatal(ExitCode.stateDirUnusable, `STATE_DIR: ${error.message}`);
    throw error;
  }
  // Ray keeps its session files, sockets and logs under /tmp; on a read-only root it would fail far from the cause.
  const rayTempProblem = tmpUnwritable('/tmp');
  if (rayTempProblem)
    fatal(
      ExitCode.tmpUnwritable,
      `/tmp is not writable (${rayTempProblem}) and Ray keeps its session files there; with --read-only, also give the container --tmpfs /tmp:rw,exec,size=2g`,
    );
  const installId = store.installId();

  const model = new StatusModel(VERSION, formatGcsAddress(config.gcs), config.manager.base, {
    cpus,
    memoryBytes,
    objectStoreBytes: resources.objectStoreBytes,
    shmBytes: shmBytes ?? null,
    source,
  });
  model.heartbeat.intervalSeconds = config.heartbeatIntervalSeconds;
  model.onStateChange = (from, to) => log.info({ from, to, reason: model.error?.message }, `state: ${to}`);
  for (const warning of resources.warnings) {
    model.warn(warning);
    log.warn(warning);
  }

  let credentials: ReturnType<StateStore['loadCredentials']>;
  let corrupt: CorruptCredentialsError | undefined;
  try {
    credentials = store.loadCredentials();
  } catch (error) {
    if (!(error instanceof CorruptCredentialsError)) throw error;
    corrupt = error;
  }
  if (!credentials && !corrupt && !config.token)
    fatal(
      ExitCode.badConfig,
      'AGENT_TOKEN_FILE: is not set and there is no saved registration (e.g. AGENT_TOKEN_FILE=/run/secrets/agent-token)',
    );

  const statusServer = buildStatusServer(model, createMetrics(model));
  await statusServer.listen({ host: config.statusHost, port: config.statusPort });
  log.info(
    { port: config.statusPort, cpus, memoryBytes, resources: { ...resources, warnings: undefined } },
    'status endpoint listening',
  );

  const versions = await localVersions(PYTHON);
  model.ray.version = versions.ray;
  model.ray.pythonVersion = versions.python;

  if (corrupt) {
    // Never re-register silently: that would orphan the provider the manager knows.
    model.registration.state = 'needs_reregistration';
    model.fail('credentials_corrupt', corrupt.message);
    model.setState('error');
    log.error({ keptAt: corrupt.keptAt }, corrupt.message);
    const stop = async () => {
      await statusServer.close();
      process.exit(ExitCode.ok);
    };
    onStop = () => void stop();
    return;
  }

  const supervisor = new AgentSupervisor({
    config,
    model,
    store,
    resources,
    statusServer,
    log,
    installId,
    credentials,
    rayBin: RAY_BIN,
    python: PYTHON,
    exit: (code) => {
      log.flush();
      process.exit(code);
    },
  });
  onStop = (signal) => void supervisor.shutdown(signal);
  await supervisor.run();
}

main().catch((error: unknown) => {
  fatal(ExitCode.forced, `unexpected failure: ${(error as Error).stack ?? String(error)}`);
});
