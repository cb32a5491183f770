import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';

/**
 * Finds the Docker Engine the way the docker CLI does, so the app talks to the same engine as `docker ps`:
 * DOCKER_HOST, else the current docker context (DOCKER_CONTEXT, else `currentContext` in the CLI config), else the
 * platform's default socket. Pure over its inputs so every branch is testable with a temp HOME.
 */
export interface EndpointInput {
  env: Readonly<Record<string, string | undefined>>;
  homedir: string;
  platform: NodeJS.Platform;
  /** The file's bytes, or undefined when it does not exist or cannot be read. */
  readFile: (file: string) => Buffer | undefined;
  exists: (file: string) => boolean;
}

export interface DockerEndpoint {
  /** Options for `new Dockerode(...)`. */
  options: Dockerode.DockerOptions;
  /** The address as docker writes it, e.g. unix:///var/run/docker.sock. */
  address: string;
  /** Set for local sockets and pipes: a missing file there may mean "not installed". */
  socketPath: string | null;
  source: 'DOCKER_HOST' | 'context' | 'default';
  /** Where the address came from, for people: `docker context "colima"`. */
  description: string;
  /** Something was off (e.g. an unreadable CLI config) but a working fallback was used. */
  warning: string | null;
}

export class DockerEndpointError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
    this.name = 'DockerEndpointError';
  }
}

interface ContextMeta {
  Endpoints?: { docker?: { Host?: string } };
}

export function defaultSocket(input: Pick<EndpointInput, 'homedir' | 'platform' | 'exists'>): string {
  if (input.platform === 'win32') return '//./pipe/docker_engine';
  if (input.platform === 'darwin') {
    // Current Docker Desktop for Mac serves the user's socket; /var/run/docker.sock is only an optional symlink.
    const user = path.join(input.homedir, '.docker', 'run', 'docker.sock');
    if (input.exists(user)) return user;
  }
  return '/var/run/docker.sock';
}

export function resolveDockerEndpoint(input: EndpointInput): DockerEndpoint {
  const env = input.env;
  const configDir = nonEmpty(env.DOCKER_CONFIG) ?? path.join(input.homedir, '.docker');

  // Like the CLI, DOCKER_HOST beats any context.
  const dockerHost = nonEmpty(env.DOCKER_HOST);
  if (dockerHost !== undefined) {
    const tls = tlsFromEnv(input, configDir);
    return {
      ...parseHost(dockerHost, tls, input.platform, 'DOCKER_HOST'),
      source: 'DOCKER_HOST',
      description: `DOCKER_HOST=${dockerHost}`,
      warning: null,
    };
  }

  let warning: string | null = null;
  let contextName = nonEmpty(env.DOCKER_CONTEXT);
  let contextOrigin = 'DOCKER_CONTEXT';
  if (contextName === undefined) {
    const configFile = path.join(configDir, 'config.json');
    const bytes = input.readFile(configFile);
    if (bytes !== undefined) {
      try {
        const config = JSON.parse(bytes.toString('utf8')) as { currentContext?: unknown };
        if (typeof config.currentContext === 'string' && config.currentContext !== '') {
          contextName = config.currentContext;
          contextOrigin = configFile;
        }
      } catch {
        // The CLI also carries on with defaults when its config file is unreadable.
        warning = `${configFile} is not valid JSON; ignoring its docker context`;
      }
    }
  }

  if (contextName !== undefined && contextName !== 'default') {
    const hash = createHash('sha256').update(contextName).digest('hex');
    const metaFile = path.join(configDir, 'contexts', 'meta', hash, 'meta.json');
    const bytes = input.readFile(metaFile);
    const fix =
      'choose an existing context with `docker context use NAME` (see `docker context ls`), or `docker context use default`';
    if (bytes === undefined)
      throw new DockerEndpointError(
        `docker context "${contextName}" (set by ${contextOrigin}) does not exist: ${metaFile} is missing`,
        fix,
      );
    let meta: ContextMeta;
    try {
      meta = JSON.parse(bytes.toString('utf8')) as ContextMeta;
    } catch {
      throw new DockerEndpointError(`docker context "${contextName}" is damaged: ${metaFile} is not valid JSON`, fix);
    }
    const host = meta.Endpoints?.docker?.Host;
    if (typeof host !== 'string' || host === '')
      throw new DockerEndpointError(`docker context "${contextName}" has no Docker endpoint in ${metaFile}`, fix);
    const tlsDir = path.join(configDir, 'contexts', 'tls', hash, 'docker');
    const tls = readTls(input, tlsDir);
    return {
      ...parseHost(host, tls, input.platform, `docker context "${contextName}"`),
      source: 'context',
      description: `docker context "${contextName}" (${host})`,
      warning,
    };
  }

  const socket = defaultSocket(input);
  const address = input.platform === 'win32' ? `npipe://${socket}` : `unix://${socket}`;
  return {
    options: { socketPath: socket },
    address,
    socketPath: socket,
    source: 'default',
    description: `the default ${input.platform === 'win32' ? 'pipe' : 'socket'} ${address}`,
    warning,
  };
}

/** The endpoint for this process: its environment, home directory, platform and file system. */
export function resolveDockerEndpointFromProcess(env: NodeJS.ProcessEnv = process.env): DockerEndpoint {
  return resolveDockerEndpoint({
    env,
    homedir: homedir(),
    platform: process.platform,
    readFile: (file) => {
      try {
        return readFileSync(file);
      } catch {
        return undefined;
      }
    },
    exists: existsSync,
  });
}

/** Certificates for a TLS endpoint. The server is always verified, even where the CLI would skip it. */
interface Tls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

function tlsFromEnv(input: EndpointInput, configDir: string): Tls | null {
  if (nonEmpty(input.env.DOCKER_TLS_VERIFY) === undefined && nonEmpty(input.env.DOCKER_TLS) === undefined) return null;
  return readTls(input, nonEmpty(input.env.DOCKER_CERT_PATH) ?? configDir) ?? {};
}

function readTls(input: EndpointInput, dir: string): Tls | null {
  const ca = input.readFile(path.join(dir, 'ca.pem'));
  const cert = input.readFile(path.join(dir, 'cert.pem'));
  const key = input.readFile(path.join(dir, 'key.pem'));
  if (ca === undefined && cert === undefined && key === undefined) return null;
  return { ca, cert, key };
}

function parseHost(
  host: string,
  tls: Tls | null,
  platform: NodeJS.Platform,
  origin: string,
): Pick<DockerEndpoint, 'options' | 'address' | 'socketPath'> {
  const fix =
    'set it to unix:///var/run/docker.sock, npipe:////./pipe/docker_engine, tcp://HOST:2376 or ssh://USER@HOST';
  const scheme = /^([a-z]+):\/\//i.exec(host)?.[1]?.toLowerCase();
  if (scheme === 'unix') {
    const socketPath = host.slice('unix://'.length);
    if (socketPath === '') throw new DockerEndpointError(`${origin}: "${host}" names no socket path`, fix);
    return { options: { socketPath }, address: host, socketPath };
  }
  if (scheme === 'npipe') {
    // npipe:////./pipe/docker_engine and npipe://./pipe/docker_engine both mean \\.\pipe\docker_engine.
    const rest = host.slice('npipe://'.length).replace(/^[/\\]+/, '');
    if (rest === '') throw new DockerEndpointError(`${origin}: "${host}" names no pipe`, fix);
    if (platform !== 'win32')
      throw new DockerEndpointError(`${origin}: "${host}" is a Windows named pipe, and this is ${platform}`, fix);
    const socketPath = `//${rest.replaceAll('\\', '/')}`;
    return { options: { socketPath }, address: host, socketPath };
  }
  if (scheme === undefined || scheme === 'tcp' || scheme === 'http' || scheme === 'https' || scheme === 'ssh') {
    let url: URL;
    try {
      url = new URL(scheme === undefined ? `tcp://${host}` : host);
    } catch {
      throw new DockerEndpointError(`${origin}: "${host}" is not a Docker address`, fix);
    }
    if (url.hostname === '') throw new DockerEndpointError(`${origin}: "${host}" names no host`, fix);
    if (scheme === 'ssh') {
      return {
        options: {
          protocol: 'ssh',
          host: url.hostname,
          port: url.port === '' ? 22 : Number(url.port),
          username: url.username === '' ? undefined : decodeURIComponent(url.username),
        },
        address: host,
        socketPath: null,
      };
    }
    const secure = tls !== null || scheme === 'https';
    const port = url.port === '' ? (secure ? 2376 : 2375) : Number(url.port);
    const options: Dockerode.DockerOptions = { protocol: secure ? 'https' : 'http', host: url.hostname, port };
    if (tls?.ca !== undefined) options.ca = tls.ca;
    if (tls?.cert !== undefined) options.cert = tls.cert;
    if (tls?.key !== undefined) options.key = tls.key;
    return { options, address: `tcp://${url.hostname}:${port}`, socketPath: null };
  }
  throw new DockerEndpointError(`${origin}: the scheme "${scheme}://" of "${host}" is not supported`, fix);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
