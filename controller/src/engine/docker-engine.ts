import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import Dockerode from 'dockerode';
import {
  type DockerEndpoint,
  DockerEndpointError,
  defaultSocket,
  resolveDockerEndpointFromProcess,
} from './docker-endpoint.js';

/** What the app needs to know about the Docker Engine: usable, or why not and what the person can do. */
export type EngineState = EngineReady | EngineUnavailable;

export interface EngineReady {
  kind: 'ready';
  /** The engine's version, e.g. 20.10.24. */
  version: string;
  /** e.g. "Docker Desktop", "Debian GNU/Linux 12 (bookworm)". */
  operatingSystem: string;
  /** What the engine can give containers: its VM's figures on Docker Desktop, not the host's. */
  cpus: number;
  memoryBytes: number;
  endpoint: string;
}

export interface EngineUnavailable {
  kind: 'not-installed' | 'not-running' | 'permission-denied';
  /** One sentence: what is wrong. */
  message: string;
  /** One sentence: what to do. */
  fix: string;
  endpoint: string;
}

export interface EngineOptions {
  platform?: NodeJS.Platform;
  /** Decides "not installed" versus "not running" when the socket is missing. */
  isDockerInstalled?: () => boolean;
  /** How long one check may take before the engine counts as not answering. */
  timeoutMs?: number;
}

export class DockerEngine {
  readonly docker: Dockerode;
  private readonly platform: NodeJS.Platform;
  private readonly installed: () => boolean;
  private readonly timeoutMs: number;

  constructor(
    readonly endpoint: DockerEndpoint,
    options: EngineOptions = {},
    /** A configuration problem found while resolving the endpoint; check() reports it instead of connecting. */
    private readonly problem: DockerEndpointError | null = null,
  ) {
    this.platform = options.platform ?? process.platform;
    this.installed = options.isDockerInstalled ?? (() => isDockerInstalled(process.env, this.platform));
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.docker = createDockerode(endpoint);
  }

  /** The engine the docker CLI would use here; a broken DOCKER_HOST or context becomes a state, not a throw. */
  static fromEnvironment(options: EngineOptions = {}, env: NodeJS.ProcessEnv = process.env): DockerEngine {
    try {
      return new DockerEngine(resolveDockerEndpointFromProcess(env), options);
    } catch (error) {
      if (!(error instanceof DockerEndpointError)) throw error;
      const platform = options.platform ?? process.platform;
      const socket = defaultSocket({ homedir: homedir(), platform, exists: existsSync });
      const fallback: DockerEndpoint = {
        options: { socketPath: socket },
        address: socket,
        socketPath: socket,
        source: 'default',
        description: 'none (the configuration is broken)',
        warning: null,
      };
      return new DockerEngine(fallback, options, error);
    }
  }

  /** Pings the engine and reads its capacity. Never throws. */
  async check(): Promise<EngineState> {
    const endpoint = this.endpoint.address;
    if (this.problem !== null)
      return { kind: 'not-running', message: this.problem.message, fix: this.problem.fix, endpoint };
    try {
      // dockerode takes an abortSignal here; its typings do not say so.
      const docker = this.docker as unknown as AbortableCalls;
      await docker.ping({ abortSignal: AbortSignal.timeout(this.timeoutMs) });
      const info = (await docker.info({ abortSignal: AbortSignal.timeout(this.timeoutMs) })) as {
        ServerVersion?: string;
        OperatingSystem?: string;
        NCPU?: number;
        MemTotal?: number;
      };
      return {
        kind: 'ready',
        version: info.ServerVersion ?? 'unknown',
        operatingSystem: info.OperatingSystem ?? 'unknown',
        cpus: info.NCPU ?? 0,
        memoryBytes: info.MemTotal ?? 0,
        endpoint,
      };
    } catch (error) {
      const installed = this.endpoint.socketPath === null || safe(this.installed);
      return classifyEngineError(error, { platform: this.platform, endpoint: this.endpoint, installed });
    }
  }

  /**
   * Re-checks every intervalMs and calls onChange with the first state and then only when the kind changes.
   * Checks never overlap. Returns a function that stops watching.
   */
  watch(onChange: (state: EngineState) => void, intervalMs = 5000): () => void {
    let stopped = false;
    let last: EngineState['kind'] | undefined;
    let timer: NodeJS.Timeout | undefined;
    const tick = async () => {
      const state = await this.check();
      if (stopped) return;
      if (state.kind !== last) {
        last = state.kind;
        try {
          onChange(state);
        } catch (error) {
          // A failing listener must not end the watch loop.
          console.error('DockerEngine.watch listener failed:', error);
        }
      }
      if (!stopped) timer = setTimeout(tick, intervalMs);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    };
  }
}

interface AbortableCalls {
  ping(options: { abortSignal: AbortSignal }): Promise<unknown>;
  info(options: { abortSignal: AbortSignal }): Promise<unknown>;
}

export function createDockerode(endpoint: DockerEndpoint): Dockerode {
  // docker-modem merges DOCKER_HOST from the process environment under our options; blank its fields so the
  // resolved endpoint is the one used.
  return new Dockerode({ host: undefined, port: undefined, protocol: undefined, ...endpoint.options });
}

/** Turns a failed ping/info into a state a person can act on. */
export function classifyEngineError(
  error: unknown,
  context: { platform: NodeJS.Platform; endpoint: Pick<DockerEndpoint, 'address' | 'socketPath'>; installed: boolean },
): EngineUnavailable {
  const { platform } = context;
  const endpoint = context.endpoint.address;
  const desktop = platform === 'darwin' || platform === 'win32';
  const code = errorCode(error);
  const detail = error instanceof Error ? error.message : String(error);
  const startFix = desktop
    ? 'start Docker Desktop and wait until it shows "Engine running"'
    : 'start the Docker Engine: sudo systemctl start docker (or start Docker Desktop if you use it)';

  if (code === 'EACCES' || code === 'EPERM')
    return {
      kind: 'permission-denied',
      message: `this user may not use the Docker Engine at ${endpoint} (permission denied)`,
      fix:
        platform === 'win32'
          ? 'add your user to the docker-users group (Computer Management > Local Users and Groups), sign out and in again, then start Docker Desktop'
          : platform === 'darwin'
            ? 'quit and start Docker Desktop again so it recreates its socket for your user'
            : 'add your user to the docker group: sudo usermod -aG docker $USER, then log in again',
      endpoint,
    };
  if (code === 'ENOENT' && context.endpoint.socketPath !== null && !context.installed)
    return {
      kind: 'not-installed',
      message: 'Docker is not installed on this computer',
      fix: desktop
        ? 'install Docker Desktop (https://www.docker.com/products/docker-desktop/) and start it'
        : 'install the Docker Engine (https://docs.docker.com/engine/install/, or sudo apt-get install docker.io) and start it',
      endpoint,
    };
  if (code === 'ENOENT' || code === 'ECONNREFUSED')
    return {
      kind: 'not-running',
      message: `the Docker Engine is not running (nothing answers at ${endpoint})`,
      fix:
        context.endpoint.socketPath === null
          ? `start the Docker Engine at ${endpoint}, or point DOCKER_HOST or the docker context at a running one`
          : startFix,
      endpoint,
    };
  if (code === 'ABORT_ERR' || code === 'ETIMEDOUT' || (error instanceof Error && error.name === 'TimeoutError'))
    return {
      kind: 'not-running',
      message: `the Docker Engine at ${endpoint} does not answer (it may still be starting)`,
      fix: `wait a moment; if it stays like this, restart it (${startFix})`,
      endpoint,
    };
  if (code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ECONNRESET')
    return {
      kind: 'not-running',
      message: `the Docker Engine at ${endpoint} cannot be reached (${code})`,
      fix: 'check that the engine is running and reachable, or point DOCKER_HOST or the docker context at another one',
      endpoint,
    };
  const status = (error as { statusCode?: unknown }).statusCode;
  return {
    kind: 'not-running',
    message:
      typeof status === 'number'
        ? `the Docker Engine at ${endpoint} is not ready (HTTP ${status}: ${detail.trim()})`
        : `the Docker Engine at ${endpoint} cannot be used: ${detail.trim()}`,
    fix: `wait a moment; if it stays like this, restart it (${startFix})`,
    endpoint,
  };
}

/**
 * Whether Docker seems installed: the CLI or daemon on PATH, or Docker Desktop in its usual place (apps started
 * from the macOS Finder get a minimal PATH without /usr/local/bin).
 */
export function isDockerInstalled(
  env: Readonly<Record<string, string | undefined>>,
  platform: NodeJS.Platform,
  exists: (file: string) => boolean = existsSync,
): boolean {
  const win = platform === 'win32';
  const pathApi = win ? path.win32 : path.posix;
  const names = win ? ['docker.exe', 'dockerd.exe'] : ['docker', 'dockerd'];
  const dirs = (env.PATH ?? env.Path ?? '').split(win ? ';' : ':').filter((dir) => dir !== '');
  if (platform === 'darwin')
    dirs.push('/usr/local/bin', '/opt/homebrew/bin', pathApi.join(homedir(), '.docker', 'bin'));
  for (const dir of dirs) for (const name of names) if (exists(pathApi.join(dir, name))) return true;
  if (platform === 'darwin') return exists('/Applications/Docker.app');
  if (win)
    return exists(pathApi.join(env.ProgramFiles ?? 'C:\\Program Files', 'Docker', 'Docker', 'Docker Desktop.exe'));
  return false;
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  const cause = (error as { cause?: unknown } | null)?.cause;
  return cause !== undefined && cause !== error ? errorCode(cause) : undefined;
}

function safe(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return true;
  }
}
