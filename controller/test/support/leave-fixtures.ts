import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AGENT_UID, ProviderSummary, RegisterResponse, STATE_DIR } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { Agent, request } from 'undici';
import { LABEL_INSTANCE, LABEL_MANAGED, LABEL_ROLE } from '../../src/container/agent-container-spec.js';
import { tarFiles } from '../../src/engine/tar.js';
import { makePlaygroundPki } from '../../src/playground/playground-pki.js';
import { freePort } from './free-port.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..', '..');
export const BASE_IMAGE = process.env.AGENT_IMAGE ?? 'ray-agent:dev';

/**
 * The real manager (manager/src/cli.ts serve, run from source by tsx) over TLS on 127.0.0.1 with a private CA:
 * a separate process, so a test can also see what it says after the controller's process is gone.
 */
export class TestManager {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'ra-leave-manager-'));
  readonly enrollmentToken = randomBytes(32).toString('base64url');
  readonly adminToken = randomBytes(32).toString('base64url');
  caPem = '';
  url = '';
  private child: ChildProcess | null = null;
  private dispatcher: Agent | null = null;
  private output = '';

  async start(): Promise<void> {
    const pki = await makePlaygroundPki(['localhost']);
    this.caPem = pki.caPem;
    const file = (name: string, content: string) => {
      const at = path.join(this.dir, name);
      writeFileSync(at, content, { mode: 0o600 });
      return at;
    };
    const port = await freePort();
    this.url = `https://localhost:${port}`;
    this.child = spawn(
      path.join(ROOT, 'node_modules', '.bin', 'tsx'),
      [
        path.join(ROOT, 'manager', 'src', 'cli.ts'),
        'serve',
        '--db',
        path.join(this.dir, 'manager.db'),
        '--cert',
        file('server.pem', pki.certPem),
        '--key',
        file('server.key', pki.keyPem),
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--enrollment-token-file',
        file('enrollment-token', this.enrollmentToken),
        '--admin-token-file',
        file('admin-token', this.adminToken),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child.stdout?.on('data', (chunk: Buffer) => {
      this.output += chunk.toString('utf8');
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.output += chunk.toString('utf8');
    });
    this.dispatcher = new Agent({ connect: { ca: this.caPem } });
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        if ((await this.call('GET', '/healthz')).status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline || this.child.exitCode !== null)
        throw new Error(`the manager did not start: ${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Everything the manager printed (its log). */
  get log(): string {
    return this.output;
  }

  async call(
    method: string,
    route: string,
    bearer?: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }> {
    if (this.dispatcher === null) throw new Error('the manager is not started');
    const response = await request(`${this.url}${route}`, {
      method: method as 'GET' | 'POST',
      dispatcher: this.dispatcher,
      headers: {
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.body.text();
    return { status: response.statusCode, body: text === '' ? undefined : JSON.parse(text) };
  }

  /** Registers a new install with the enrollment token, as an agent would. */
  async register(): Promise<RegisterResponse> {
    const res = await this.call('POST', '/api/register', this.enrollmentToken, {
      installId: randomUUID(),
      hostname: 'leave-test',
      cpuCores: 2,
      memoryBytes: 4 * 1024 ** 3,
      ipAddress: '192.0.2.10',
      versions: { agent: '0.1.0', ray: '2.58.0', python: '3.11.2' },
      limits: { cpus: 1, memoryBytes: 1024 ** 3 },
    });
    if (res.status !== 200) throw new Error(`register: ${res.status} ${JSON.stringify(res.body)}`);
    return RegisterResponse.parse(res.body);
  }

  async provider(id: string): Promise<ProviderSummary> {
    const res = await this.call('GET', `/api/providers/${id}`, this.adminToken);
    if (res.status !== 200) throw new Error(`provider: ${res.status}`);
    return ProviderSummary.parse(res.body);
  }

  /** The status of one heartbeat with this credential. */
  async heartbeat(reg: RegisterResponse): Promise<number> {
    const res = await this.call('POST', '/api/heartbeat', reg.credential, {
      providerId: reg.providerId,
      bootId: randomUUID(),
      state: 'contributing',
      rayNode: 'joined',
      cpuPercent: 1,
      memoryBytes: 1,
      memoryPercent: 1,
      activeTasks: 0,
      recentErrors: [],
      sentAt: new Date().toISOString(),
    });
    return res.status;
  }

  async stop(): Promise<void> {
    await this.dispatcher?.close();
    if (this.child !== null && this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child?.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * An image of this test alone (the agent image plus a label: its own ID), so that leaving may remove it without
 * touching the image other tests run.
 */
export async function buildTestImage(docker: Dockerode, tag: string): Promise<void> {
  const context = tarFiles([
    { name: 'Dockerfile', content: `FROM ${BASE_IMAGE}\nLABEL ra-leave-test="${tag}"\n`, mode: 0o644, uid: 0, gid: 0 },
  ]);
  const stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, { t: tag, rm: true });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (error: Error | null, output: Array<{ error?: string }>) => {
      const failed = output?.find((item) => item.error);
      if (error || failed) reject(error ?? new Error(failed?.error));
      else resolve();
    }),
  );
}

/**
 * A stand-in for the pair the controller makes, with the same names, labels and mounts (no Ray: leaving does not
 * need one): `<name>` and `<name>-tunnel` sleeping, the state volume holding `credentials` as the agent saves them.
 */
export async function standInPair(
  docker: Dockerode,
  name: string,
  image: string,
  credentials: { providerId: string; credential: string } | null,
): Promise<void> {
  const labels = (role: string) => ({ [LABEL_MANAGED]: 'true', [LABEL_ROLE]: role, [LABEL_INSTANCE]: name });
  await docker.createVolume({ Name: `${name}-state`, Labels: labels('agent-state') });
  await docker.createVolume({ Name: `${name}-tunnel`, Labels: labels('tunnel-state') });
  const make = async (container: string, role: string, mounts: Dockerode.MountSettings[]) => {
    const created = await docker.createContainer({
      name: container,
      Image: image,
      Entrypoint: ['sleep', 'infinity'],
      Labels: labels(role),
      StopTimeout: 2,
      HostConfig: { Init: true, NetworkMode: 'none', Mounts: mounts },
    });
    return created;
  };
  const agent = await make(name, 'agent', [
    { Type: 'volume', Source: `${name}-state`, Target: STATE_DIR },
    { Type: 'volume', Source: `${name}-tunnel`, Target: '/var/lib/ray-agent-tunnel', ReadOnly: true },
  ]);
  const tunnel = await make(`${name}-tunnel`, 'tunnel', [
    { Type: 'volume', Source: `${name}-tunnel`, Target: '/var/lib/ray-agent-tunnel' },
    { Type: 'volume', Source: `${name}-state`, Target: STATE_DIR, ReadOnly: true },
  ]);
  if (credentials !== null) {
    const saved = {
      version: 1,
      ...credentials,
      managerBase: 'https://manager',
      registeredAt: new Date().toISOString(),
    };
    const owner = { uid: AGENT_UID, gid: AGENT_UID };
    await agent.putArchive(
      tarFiles([{ name: 'credentials.json', content: `${JSON.stringify(saved, null, 2)}\n`, mode: 0o600, ...owner }]),
      { path: STATE_DIR },
    );
  }
  await tunnel.start();
  await agent.start();
}

/** What of this test is still in the engine: containers and volumes whose name starts with `prefix`, the image. */
export async function engineLeftovers(docker: Dockerode, prefix: string, image: string): Promise<string[]> {
  const containers = await docker.listContainers({ all: true });
  const volumes = (await docker.listVolumes()).Volumes ?? [];
  const images = await docker.listImages();
  return [
    ...containers.filter((c) => c.Names.some((n) => n.startsWith(`/${prefix}`))).map((c) => `container ${c.Names[0]}`),
    ...volumes.filter((v) => v.Name.startsWith(prefix)).map((v) => `volume ${v.Name}`),
    ...images.filter((i) => (i.RepoTags ?? []).includes(image)).map(() => `image ${image}`),
  ];
}
