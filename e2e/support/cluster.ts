import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CONTAINER_STATUS_PORT,
  ProviderList,
  SANDBOX_TMPFS_FLAGS,
  SPILL_DIR,
  STATE_DIR,
  StatusDocument,
  TUNNEL_DIR,
} from '@ray-agent/protocol';
import { Agent, request } from 'undici';
import { expect } from 'vitest';
import { HEAD_START_ARGS } from '../../controller/src/playground/playground.js';
import { docker, run, waitFor } from './run.js';
import { makePki, type TestPki, writeSecret } from './tls.js';

export const AGENT_IMAGE = process.env.AGENT_IMAGE ?? 'ray-agent:dev';
const ARTIFACTS = join(import.meta.dirname, '..', 'artifacts');
export const MANAGER_IMAGE = process.env.MANAGER_IMAGE ?? 'ray-agent-manager:dev';

/** Hardened run flags, as the tray app uses them. */
export const HARDENED = [
  '--cap-drop=ALL',
  '--security-opt=no-new-privileges',
  '--read-only',
  '--tmpfs=/tmp:rw,exec,size=2g',
  '--init',
];

/**
 * The hardening with what Ray's gVisor sandboxes need, as the README's `docker run` line gives it: the project's
 * seccomp profile, Docker's /proc masks lifted, /tmp without nosuid/nodev.
 */
export const SANDBOX_HARDENED = [
  ...HARDENED.filter((flag) => !flag.startsWith('--tmpfs=/tmp')),
  `--tmpfs=/tmp:${SANDBOX_TMPFS_FLAGS},size=2g`,
  `--security-opt=seccomp=${fileURLToPath(new URL('../../protocol/src/seccomp-gvisor.json', import.meta.url))}`,
  '--security-opt=systempaths=unconfined',
];

/**
 * A whole system on a private Docker network, made and removed by one test file: a Ray head with no CPUs (so
 * any task must run on the agent), the reference manager over TLS with a private CA, and agent containers.
 */
export class TestCluster {
  readonly id = randomBytes(3).toString('hex');
  readonly network = `ray-agent-e2e-${this.id}`;
  readonly head = `head-${this.id}`;
  readonly manager = `manager-${this.id}`;
  readonly enrollmentToken = randomBytes(32).toString('base64url');
  readonly adminToken = randomBytes(32).toString('base64url');
  pki!: TestPki;
  private readonly containers = new Set<string>();
  private readonly volumes = new Set<string>();
  private managerPort = 0;
  private readonly tls = new Map<string, Agent>();

  async start(): Promise<void> {
    await docker('network', 'create', this.network);
    this.pki = await makePki([this.manager, 'localhost', '127.0.0.1'], {
      dir: mkdtempSync(join(tmpdir(), 'ray-agent-e2e-')),
    });
    writeSecret(this.pki.dir, 'enrollment-token', this.enrollmentToken);
    writeSecret(this.pki.dir, 'admin-token', this.adminToken);
    await Promise.all([this.startHead(), this.startManager()]);
  }

  async startHead(): Promise<void> {
    this.containers.add(this.head);
    await docker(
      'run',
      '-d',
      '--name',
      this.head,
      '--network',
      this.network,
      '--shm-size=512m',
      '--no-healthcheck',
      '--entrypoint',
      'ray',
      AGENT_IMAGE,
      ...HEAD_START_ARGS,
    );
  }

  async startManager(): Promise<void> {
    this.containers.add(this.manager);
    this.volumes.add(`${this.manager}-data`);
    await docker(
      'run',
      '-d',
      '--name',
      this.manager,
      '--network',
      this.network,
      '-p',
      '127.0.0.1::8443',
      '-v',
      `${this.pki.dir}:/certs:ro`,
      '-v',
      `${this.manager}-data:/data`,
      MANAGER_IMAGE,
      'serve',
      '--db',
      '/data/manager.db',
      '--cert',
      '/certs/server.pem',
      '--key',
      '/certs/server.key',
      '--port',
      '8443',
      '--heartbeat-interval',
      '2',
      '--enrollment-token-file',
      '/certs/enrollment-token',
      '--admin-token-file',
      '/certs/admin-token',
    );
    await this.managerStarted();
  }

  /** Docker publishes on a new host port after each start: look it up again, and wait for the manager. */
  async managerStarted(): Promise<void> {
    this.managerPort = await publishedPort(this.manager, 8443);
    await waitFor(
      'the manager to answer',
      async () => ((await this.managerGet('/healthz')).status === 200 ? true : undefined),
      30_000,
    );
  }

  /** Starts an agent container; returns its name. Extra `docker run` flags and env may be given. */
  async startAgent(
    options: {
      name?: string;
      env?: Record<string, string>;
      flags?: string[];
      volume?: string;
      /** Instead of HARDENED, e.g. SANDBOX_HARDENED. */
      hardening?: string[];
    } = {},
  ): Promise<Agent0> {
    const name = options.name ?? `agent-${this.id}-${randomBytes(2).toString('hex')}`;
    const volume = options.volume ?? `${name}-state`;
    this.containers.add(name);
    this.volumes.add(volume);
    const env = {
      RAY_HEAD: `ray://${this.head}:10001`,
      MANAGER_URL: `https://${this.manager}:8443/api/register`,
      MANAGER_CA_FILE: '/certs/ca.pem',
      AGENT_TOKEN_FILE: '/certs/enrollment-token',
      HEARTBEAT_INTERVAL: '2',
      RAY_GCS_RECONNECT_TIMEOUT: '15',
      ...options.env,
    };
    await docker(
      'run',
      '-d',
      '--name',
      name,
      '--network',
      this.network,
      '-p',
      '127.0.0.1::8765',
      '--shm-size=1g',
      '--stop-timeout=60',
      ...(options.hardening ?? HARDENED),
      '-v',
      `${this.pki.dir}:/certs:ro`,
      '-v',
      `${volume}:/var/lib/ray-agent`,
      ...Object.entries(env).flatMap(([key, value]) => ['-e', `${key}=${value}`]),
      ...(options.flags ?? ['--cpus=2', '--memory=4g']),
      AGENT_IMAGE,
    );
    return new Agent0(name, volume, await publishedPort(name, 8765));
  }

  async providers(): Promise<ProviderList['providers']> {
    const response = await this.managerGet('/api/providers', this.adminToken);
    if (response.status !== 200) throw new Error(`providers: ${response.status} ${response.text}`);
    return ProviderList.parse(JSON.parse(response.text)).providers;
  }

  async managerGet(path: string, bearer?: string): Promise<{ status: number; text: string }> {
    const dispatcher = this.dispatcher();
    const response = await request(`https://localhost:${this.managerPort}${path}`, {
      dispatcher,
      headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
    });
    return { status: response.statusCode, text: await response.body.text() };
  }

  /** Runs a Ray driver on the head (it has the same Ray and Python as the agent). */
  driver(script: string, timeoutMs = 180_000) {
    return run('docker', ['exec', '-i', this.head, 'python3', '-'], { input: script, timeoutMs });
  }

  async track(name: string): Promise<void> {
    this.containers.add(name);
  }

  async stop(): Promise<void> {
    for (const agent of this.tls.values()) await agent.close();
    // Keep every container's log for a person reading a failed run.
    mkdirSync(ARTIFACTS, { recursive: true });
    for (const name of this.containers) {
      const logs = await run('docker', ['logs', name]);
      writeFileSync(join(ARTIFACTS, `${name}.log`), logs.stdout + logs.stderr);
    }
    await run('docker', ['rm', '-f', '-v', ...this.containers]);
    if (this.volumes.size) await run('docker', ['volume', 'rm', '-f', ...this.volumes]);
    await run('docker', ['network', 'rm', this.network]);
  }

  private dispatcher(): Agent {
    let agent = this.tls.get('manager');
    if (!agent) {
      agent = new Agent({ connect: { ca: readFileSync(this.pki.caCert, 'utf8') } });
      this.tls.set('manager', agent);
    }
    return agent;
  }
}

/** One agent container and its loopback status endpoint. */
export class Agent0 {
  constructor(
    readonly name: string,
    readonly volume: string,
    public statusPort: number,
  ) {}

  /** Docker publishes on a new host port after each start. */
  async restarted(): Promise<void> {
    this.statusPort = await publishedPort(this.name, 8765);
  }

  async status(): Promise<StatusDocument> {
    const response = await request(`http://127.0.0.1:${this.statusPort}/status`).catch(async (error) => {
      // A container that was restarted is published on a new host port.
      await this.restarted().catch(() => undefined);
      throw error;
    });
    if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`);
    return StatusDocument.parse(await response.body.json());
  }

  /**
   * Waits until the status satisfies the predicate; returns that status. `everyMs` polls faster, for states that
   * last only a moment (an agent that exits two seconds after it fails).
   */
  waitForStatus(
    what: string,
    predicate: (status: StatusDocument) => boolean,
    timeoutMs = 120_000,
    everyMs = 500,
  ): Promise<StatusDocument> {
    return waitFor(
      `${this.name}: ${what}`,
      async () => {
        const status = await this.status();
        return predicate(status) ? status : undefined;
      },
      timeoutMs,
      everyMs,
    );
  }

  logs(): Promise<string> {
    return run('docker', ['logs', this.name]).then((result) => result.stdout + result.stderr);
  }
}

/**
 * The host port on 127.0.0.1 that `port` of the container is published on. A container in another one's network
 * namespace (the agent of a pair, `container:<name>-tunnel`) has no ports of its own: the namespace's owner
 * publishes them, so that one is asked.
 */
export async function publishedPort(container: string, port: number): Promise<number> {
  const publisher = await namespaceOwner(container);
  const text = await docker('port', publisher, `${port}/tcp`);
  const match = /127\.0\.0\.1:(\d+)/.exec(text);
  if (!match) throw new Error(`${publisher}: port ${port} is not published on 127.0.0.1 (${text})`);
  return Number(match[1]);
}

/** The container whose network namespace `container` runs in: itself, or the one its NetworkMode joins. */
async function namespaceOwner(container: string): Promise<string> {
  const mode = await docker('inspect', '--format', '{{.HostConfig.NetworkMode}}', container);
  return mode.startsWith('container:') ? mode.slice('container:'.length) : container;
}

export async function containerExit(name: string, timeoutMs: number): Promise<number> {
  const result = await run('docker', ['wait', name], { timeoutMs });
  return Number(result.stdout.trim());
}

/** What `docker inspect` says of one container (the fields the pair's checks read). */
interface Inspect {
  Id: string;
  Name: string;
  Config: { Env: string[] | null; User: string; StopTimeout?: number };
  HostConfig: {
    NetworkMode: string;
    PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }>> | null;
    CapAdd: string[] | null;
    CapDrop: string[] | null;
  };
  NetworkSettings: { Ports: Record<string, unknown> | null; Networks: Record<string, unknown> | null };
  Mounts: Array<{ Type: string; Name?: string; Destination: string; RW: boolean }>;
}

/**
 * The agent the controller makes by default is a pair: the tunnel container `<name>-tunnel` owns the network
 * namespace, its Docker network and the loopback status port, and alone holds NET_ADMIN; the agent joins that
 * namespace with no port, no network and no capability of its own, and sees the tunnel's volume read-only. No
 * secret is in either container's configuration. Returns both inspections for further checks.
 */
export async function expectPair(
  name: string,
  expected: { statusPort: number; network?: string; secrets: string[] },
): Promise<{ agent: Inspect; tunnel: Inspect }> {
  const tunnelName = `${name}-tunnel`;
  const [agent, tunnel] = JSON.parse(await docker('inspect', name, tunnelName)) as [Inspect, Inspect];
  const port = `${CONTAINER_STATUS_PORT}/tcp`;
  // Docker keeps the name the namespace was joined by, or the ID it resolved to.
  expect([`container:${tunnelName}`, `container:${tunnel.Id}`]).toContain(agent.HostConfig.NetworkMode);
  expect(Object.keys(agent.HostConfig.PortBindings ?? {})).toEqual([]);
  expect(Object.keys(agent.NetworkSettings.Networks ?? {})).toEqual([]);
  expect(tunnel.HostConfig.PortBindings?.[port]).toEqual([
    { HostIp: '127.0.0.1', HostPort: String(expected.statusPort) },
  ]);
  if (expected.network !== undefined)
    expect(Object.keys(tunnel.NetworkSettings.Networks ?? {})).toEqual([expected.network]);
  expect(agent.HostConfig.CapDrop).toEqual(['ALL']);
  expect(agent.HostConfig.CapAdd ?? []).toEqual([]);
  expect(tunnel.HostConfig.CapDrop).toEqual(['ALL']);
  expect(tunnel.HostConfig.CapAdd).toEqual(['NET_ADMIN']);
  const mounts = (inspect: Inspect) =>
    inspect.Mounts.map((m) => ({ type: m.Type, name: m.Name, at: m.Destination, rw: m.RW })).sort((a, b) =>
      a.at < b.at ? -1 : 1,
    );
  expect(mounts(agent)).toEqual([
    { type: 'volume', name: `${name}-state`, at: STATE_DIR, rw: true },
    { type: 'volume', name: `${name}-spill`, at: SPILL_DIR, rw: true },
    { type: 'volume', name: `${name}-tunnel`, at: TUNNEL_DIR, rw: false },
  ]);
  expect(mounts(tunnel)).toEqual([
    { type: 'volume', name: `${name}-state`, at: STATE_DIR, rw: false },
    { type: 'volume', name: `${name}-tunnel`, at: TUNNEL_DIR, rw: true },
  ]);
  for (const inspect of [agent, tunnel])
    for (const secret of expected.secrets) expect(JSON.stringify(inspect), inspect.Name).not.toContain(secret);
  return { agent, tunnel };
}
