import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, TUNNEL_DIR } from '@ray-agent/protocol';
import { type AgentConfig, ConfigError, loadConfig } from './config/agent-config.js';
import { formatGcsAddress } from './config/ray-head.js';
import { controlSocketPath, serveControl } from './control/control-socket.js';
import { installCrashPolicy } from './crash-policy.js';
import { cgroupReader, freeBytes, hostCpus, hostMemory, shmSize } from './limits/cgroup.js';
import { effectiveLimits, tooLittleMemory } from './limits/effective-limits.js';
import { liveLimitsPath, readLiveLimits, startupRequest } from './limits/live-limits.js';
import { rayResources } from './limits/ray-resources.js';
import { createLogger, type Logger } from './log.js';
import { logTokenFile } from './manager/registration.js';
import { CorruptCredentialsError, StateDirError, StateStore } from './state/state-store.js';
import { StatusModel } from './status/status-model.js';
import { buildStatusServer } from './status/status-server.js';
import { AgentSupervisor } from './supervisor/agent-supervisor.js';
import { localVersions } from './supervisor/host-facts.js';

declare const AGENT_VERSION: string;
const VERSION = typeof AGENT_VERSION === 'string' ? AGENT_VERSION : '0.0.0-dev';
const RAY_BIN = process.env.RAY_AGENT_RAY_BIN ?? 'ray';
const PYTHON = process.env.RAY_AGENT_PYTHON ?? 'python3';
/** The tunnel volume's mount point; tests mount a directory of their own, as for the two above. */
const TUNNEL_MOUNT = process.env.RAY_AGENT_TUNNEL_DIR ?? TUNNEL_DIR;

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

/** What the crash policy and the token file's clean-up may use, filled in as the agent starts. */
const running: {
  log?: Logger;
  supervisor?: AgentSupervisor;
  config?: AgentConfig;
  store?: StateStore;
  model?: StatusModel;
} = {};

const crashed = installCrashPolicy({
  log: () => running.log,
  supervisor: () => running.supervisor,
  secrets: () => [running.config?.token, savedCredential(running.store)],
  exit: (code) => process.exit(code),
});

function savedCredential(store: StateStore | undefined): string | undefined {
  try {
    return store?.loadCredentials()?.credential;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  let config: AgentConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) fatal(ExitCode.badConfig, error.message);
    throw error;
  }
  running.config = config;
  // The token now lives only in this process's memory: nothing the agent starts (Ray, its tasks) inherits it.
  delete process.env.AGENT_TOKEN;
  delete process.env.AGENT_TOKEN_FD;
  const log = createLogger(config.logLevel);
  running.log = log;
  // A stop can come while the agent is still starting (before Ray or the supervisor exist): exit cleanly then too.
  let onStop: (signal: NodeJS.Signals) => void = (signal) => {
    log.info({ signal }, 'stopped while starting');
    log.flush();
    process.exit(ExitCode.ok);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => onStop(signal));

  // A Python start (about 0.1 s) that runs while the agent reads its limits and state.
  const versionsRead = localVersions(PYTHON);
  const cgroup = cgroupReader();
  // The offer the controller gave live (if any) outranks CPU_LIMIT/MEMORY_LIMIT; a quota that is only its throttle
  // is not the limit.
  const live = readLiveLimits(liveLimitsPath(config.stateDir));
  const start = startupRequest(
    { cpus: config.cpuLimit, memoryBytes: config.memoryLimit },
    live.kind === 'ok' ? live.limits : undefined,
    cgroup.cpuLimit(),
  );
  // The variables never outrank the kernel: the smaller of what they ask and what the container (or host) has.
  const limits = effectiveLimits(start.request, {
    cgroupCpus: start.cgroupCpus,
    cgroupMemoryBytes: cgroup.memoryLimit(),
    hostCpus: hostCpus(),
    hostMemoryBytes: hostMemory(),
  });
  const tooSmall = tooLittleMemory(limits);
  if (tooSmall) fatal(ExitCode.badConfig, tooSmall);
  const { cpus, memoryBytes, source } = limits;
  const shmBytes = shmSize();
  const resources = rayResources({ cpus, memoryBytes, source, shmBytes, tmpFreeBytes: freeBytes('/tmp') });

  const store = new StateStore(config.stateDir, {
    enrollmentTokenFile: process.env.AGENT_TOKEN_FILE?.trim() || undefined,
    onTokenFileKept: (warning) => running.model?.warn(warning),
  });
  running.store = store;
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
    rayCpus: resources.numCpus,
    rayMemoryBytes: resources.memoryBytes,
    objectStoreIn: resources.plan.objectStoreIn,
    throttleCpus: live.kind === 'ok' ? live.limits.throttleCpus : null,
  });
  running.model = model;
  model.heartbeat.intervalSeconds = config.heartbeatIntervalSeconds;
  model.onStateChange = (from, to) => log.info({ from, to, reason: model.error?.message }, `state: ${to}`);
  const liveWarnings = live.kind === 'invalid' ? [live.warning] : [];
  for (const warning of [...liveWarnings, ...limits.warnings, ...resources.warnings]) {
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
  const tokenFile = process.env.AGENT_TOKEN_FILE?.trim();
  if (!credentials && !corrupt && !config.token)
    fatal(
      ExitCode.badConfig,
      tokenFile
        ? `AGENT_TOKEN_FILE: "${tokenFile}" is missing or empty and there is no saved registration; put the enrollment token from the manager there (e.g. AGENT_TOKEN_FILE=/run/secrets/agent-token)`
        : 'AGENT_TOKEN_FILE: is not set and there is no saved registration (e.g. AGENT_TOKEN_FILE=/run/secrets/agent-token)',
    );
  // Registered in an earlier run: a token file still there (a controller wrote it again) has done its job.
  if (credentials && credentials.managerBase === config.manager.base) logTokenFile(store.forgetEnrollmentToken(), log);

  const statusServer = buildStatusServer(model, { onStatusRead: () => running.supervisor?.statusRead() });
  await statusServer.listen({ host: config.statusHost, port: config.statusPort });
  log.info(
    { port: config.statusPort, cpus, memoryBytes, resources: { ...resources, warnings: undefined } },
    'status endpoint listening',
  );

  const versions = await versionsRead;
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
    tunnelDir: TUNNEL_MOUNT,
    exit: (code) => {
      log.flush();
      process.exit(code);
    },
  });
  running.supervisor = supervisor;
  onStop = (signal) => void supervisor.shutdown(signal);
  // The controller's live limits and drains (docker exec … control.mjs) reach the supervisor here.
  await serveControl(controlSocketPath(config.stateDir), (request) => supervisor.control(request));
  await supervisor.run();
}

main().catch(crashed);
