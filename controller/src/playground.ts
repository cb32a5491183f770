import { randomBytes } from 'node:crypto';
import type { PullProgress } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import type { AgentContainer, AgentSpec } from './agent-container.js';
import { type AgentSettings, agentSpecFor } from './agent-spec.js';
import { makePlaygroundPki } from './playground-pki.js';
import { tarFiles } from './tar.js';

/**
 * The local playground: a complete Ray Agent system on this machine, for a person with no cluster yet. A Ray
 * head with no CPUs of its own (so every task runs on the agent), the reference manager over TLS with a private
 * CA made here, and the agent container joined to both, all on one private Docker network.
 */
export const PLAYGROUND = {
  network: 'ray-agent-playground',
  head: 'ray-agent-playground-head',
  manager: 'ray-agent-playground-manager',
  managerVolume: 'ray-agent-playground-manager-data',
  label: 'io.ray-agent.playground',
} as const;

/** `ray start` for a head with no CPUs of its own, so every task must run on an agent. */
export const HEAD_START_ARGS = [
  'start',
  '--head',
  '--num-cpus=0',
  '--port=6379',
  '--include-dashboard=false',
  '--disable-usage-stats',
  '--block',
] as const;

export interface PlaygroundOptions {
  /** The person's settings: the agent's image (the head runs it too), limits and status port. */
  settings: AgentSettings;
  managerImage: string;
  onProgress?: (progress: PullProgress) => void;
  /** Extra agent variables, e.g. a shorter heartbeat interval. */
  extraEnv?: Record<string, string>;
}

export class Playground {
  constructor(
    private readonly docker: Dockerode,
    private readonly agent: AgentContainer,
  ) {}

  /** Starts (or adopts) the head and the manager, then brings the agent up against them. */
  async up(options: PlaygroundOptions): Promise<{ spec: AgentSpec }> {
    const progress = options.onProgress ?? (() => {});
    const agentImage = options.settings.image;
    await this.agent.ensureImage(agentImage, progress);
    await this.agent.ensureImage(options.managerImage, progress);
    await this.ensureNetwork();
    await this.ensureHead(agentImage);
    const { caPem, enrollmentToken } = await this.ensureManager(options.managerImage);
    // A new manager means a new CA and token: they are delivered into the agent's volume (the agent restarts to
    // read them), the container stays.
    const spec = agentSpecFor({
      settings: options.settings,
      name: this.agent.name,
      cluster: { clusterAddress: `ray://${PLAYGROUND.head}:10001`, managerUrl: `https://${PLAYGROUND.manager}:8443` },
      secrets: { token: enrollmentToken, managerCaPem: caPem },
      overrides: { network: PLAYGROUND.network, ...(options.extraEnv ? { extraEnv: options.extraEnv } : {}) },
    });
    await this.agent.up(spec, progress);
    return { spec };
  }

  /** Runs a small sample Ray job on the head; returns what it printed. Its tasks can only run on the agent. */
  async sampleJob(tasks = 8, seconds = 5): Promise<string> {
    const script = [
      'import ray, time',
      'ray.init(address="auto", logging_level="ERROR")',
      '@ray.remote(num_cpus=0.5)',
      'def square(x):',
      `    time.sleep(${Number(seconds)})`,
      '    return x * x',
      `print("sample job results:", ray.get([square.remote(i) for i in range(${Number(tasks)})]), flush=True)`,
    ].join('\n');
    const exec = await this.docker.getContainer(PLAYGROUND.head).exec({
      Cmd: ['python3', '-c', script],
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const sink = { write: (chunk: Buffer) => chunks.push(chunk) } as unknown as NodeJS.WritableStream;
      this.docker.modem.demuxStream(stream, sink, sink);
      stream.on('end', () => resolve());
      stream.on('error', reject);
    });
    const { ExitCode } = await exec.inspect();
    const output = Buffer.concat(chunks).toString('utf8').trim();
    if (ExitCode !== 0)
      throw new Error(`the sample job failed (exit ${ExitCode}): ${output.split('\n').slice(-3).join(' ')}`);
    return output;
  }

  /** Removes the head, the manager, their data and the network. The agent itself is the caller's to stop. */
  async down(): Promise<void> {
    for (const name of [PLAYGROUND.head, PLAYGROUND.manager]) {
      await this.docker.getContainer(name).remove({ force: true, v: true }).catch(ignoreMissing);
    }
    await this.docker.getVolume(PLAYGROUND.managerVolume).remove().catch(ignoreMissing);
    await this.docker.getNetwork(PLAYGROUND.network).remove().catch(ignoreMissing);
  }

  private async ensureNetwork(): Promise<void> {
    const existing = await this.docker.listNetworks({ filters: { name: [PLAYGROUND.network] } });
    if (existing.some((network) => network.Name === PLAYGROUND.network)) return;
    await this.docker.createNetwork({ Name: PLAYGROUND.network, Labels: { [PLAYGROUND.label]: 'true' } });
  }

  private async ensureHead(image: string): Promise<void> {
    if (await this.startIfPresent(PLAYGROUND.head)) return;
    const head = await this.docker.createContainer({
      name: PLAYGROUND.head,
      Image: image,
      Entrypoint: ['ray'],
      Cmd: [...HEAD_START_ARGS],
      Labels: { [PLAYGROUND.label]: 'true' },
      // The head runs from the agent image, whose HEALTHCHECK asks the agent's status endpoint: not here.
      Healthcheck: { Test: ['NONE'] },
      HostConfig: {
        NetworkMode: PLAYGROUND.network,
        ShmSize: 512 * 1024 ** 2,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        Init: true,
      },
    });
    await head.start();
  }

  /** The manager gets its TLS files and tokens through the Docker API, so nothing is written on the host. */
  private async ensureManager(image: string): Promise<{ caPem: string; enrollmentToken: string }> {
    const present = await this.docker
      .getContainer(PLAYGROUND.manager)
      .inspect()
      .catch(() => undefined);
    if (present) await this.docker.getContainer(PLAYGROUND.manager).remove({ force: true });
    const pki = await makePlaygroundPki([PLAYGROUND.manager, 'localhost']);
    const enrollmentToken = randomBytes(32).toString('base64url');
    const adminToken = randomBytes(32).toString('base64url');
    const manager = await this.docker.createContainer({
      name: PLAYGROUND.manager,
      Image: image,
      Cmd: [
        'serve',
        '--db',
        '/data/manager.db',
        '--cert',
        '/tls/server.crt',
        '--key',
        '/tls/server.key',
        '--port',
        '8443',
        '--enrollment-token-file',
        '/tls/enrollment-token',
        '--admin-token-file',
        '/tls/admin-token',
      ],
      Labels: { [PLAYGROUND.label]: 'true' },
      HostConfig: {
        NetworkMode: PLAYGROUND.network,
        Mounts: [{ Type: 'volume', Source: PLAYGROUND.managerVolume, Target: '/data' }],
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
      },
    });
    const owner = { uid: 10001, gid: 10001 };
    await manager.putArchive(
      tarFiles([
        { name: 'server.crt', content: pki.certPem, mode: 0o644, ...owner },
        { name: 'server.key', content: pki.keyPem, mode: 0o600, ...owner },
        { name: 'enrollment-token', content: enrollmentToken, mode: 0o600, ...owner },
        { name: 'admin-token', content: adminToken, mode: 0o600, ...owner },
      ]),
      { path: '/tls' },
    );
    await manager.start();
    return { caPem: pki.caPem, enrollmentToken };
  }

  private async startIfPresent(name: string): Promise<boolean> {
    const info = await this.docker
      .getContainer(name)
      .inspect()
      .catch(() => undefined);
    if (!info) return false;
    if (!info.State.Running) await this.docker.getContainer(name).start();
    return true;
  }
}

function ignoreMissing(error: { statusCode?: number }): void {
  if (error.statusCode !== 404 && error.statusCode !== 304) throw error;
}
