import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Agent as Dispatcher, request } from 'undici';
import { HEAD_START_ARGS } from '../../controller/src/playground/playground.js';
import { makePki, type TestPki, writeSecret } from '../../e2e/support/tls.js';
import { type ArmShape, agentRunArgs, plainRunArgs } from '../suites/nodes/containers.js';
import { Cgroup, children, processTitle } from './procfs.js';
import type { SuiteContext } from './suite.js';
import { BENCH_DIR, docker, exited, log, REPO_DIR, run, sleep, spawnLogged, waitFor } from './util.js';

export const VENV = join(BENCH_DIR, '.venv');
export const RAY_VERSION = '2.58.0';
export const GCS = '127.0.0.1:6379';
export const MANAGER_PORT = 8443;
export const MANAGER_BIN = join(REPO_DIR, 'manager', 'dist', 'manager.mjs');
/** Every container and volume the bench makes carries this label, so a crashed run can be swept by it. */
export const LABEL = 'ray-agent-bench';

/** Answers from the Ray driver running on the head. */
export type DriverAnswer = Record<string, unknown> & { ok: boolean; error?: string };

/** The long-lived Ray driver on the head (bench/lib/driver.py), spoken to in JSON lines. */
export class Driver {
  private readonly child: ChildProcess;
  private readonly waiting: Array<(answer: DriverAnswer) => void> = [];
  private chain: Promise<unknown> = Promise.resolve();

  constructor(head: string, logFile: string, gcs = GCS) {
    this.child = spawn('docker', ['exec', '-i', head, 'python3', '-u', '/bench/driver.py', gcs], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const errors = createWriteStream(logFile, { flags: 'a' });
    this.child.stderr?.pipe(errors);
    if (!this.child.stdout) throw new Error('driver has no stdout');
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      if (!line.startsWith('@@bench ')) {
        errors.write(`${line}\n`);
        return;
      }
      this.waiting.shift()?.(JSON.parse(line.slice(8)) as DriverAnswer);
    });
    // Crash-only: a driver that dies (the head failed to start) fails whoever waits, instead of hanging the run.
    this.child.on('exit', (code) => {
      for (const waiter of this.waiting.splice(0))
        waiter({ ok: false, error: `the driver exited (${code}); see ${logFile}` });
    });
  }

  ready(): Promise<DriverAnswer> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** One command at a time, in order. Throws on a failed command. */
  send(command: Record<string, unknown>): Promise<DriverAnswer> {
    const next = this.chain.then(
      () =>
        new Promise<DriverAnswer>((resolve, reject) => {
          this.waiting.push((answer) =>
            answer.ok ? resolve(answer) : reject(new Error(`driver ${String(command.cmd)}: ${answer.error}`)),
          );
          this.child.stdin?.write(`${JSON.stringify(command)}\n`);
        }),
    );
    this.chain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    this.child.stdin?.end();
    await Promise.race([exited(this.child), sleep(5_000)]);
    this.child.kill('SIGKILL');
  }
}

/** A worker node under test: the agent's container, or the plain Ray container from the same image. */
export interface WorkerNode {
  kind: 'agent' | 'plain';
  name: string;
  /** Wall-clock ms just before the node was started (container create + start, or spawning `ray start`). */
  startedAt: number;
  cgroup: Cgroup;
  /** The container's PID 1 (docker-init), where `docker stop` sends its signal. */
  mainPid: number;
  /** The agent's own Node.js process (agent only). */
  agentPid?: number;
  drainDeadlineSeconds: number;
}

/** Both arms get the same shape: limits, CPUs pinned, drain deadline. */
export type NodeOptions = ArmShape;

/**
 * Everything one bench run shares: a private network namespace whose only interface is loopback (held by a
 * container started with --network none; the head and both arms' containers join it, and the bench runs in it
 * through nsenter), the reference manager over TLS, a Ray head with no CPUs, and the driver on the head.
 */
export class BenchCluster {
  readonly id: string;
  readonly tmp: string;
  readonly head: string;
  readonly enrollmentToken = randomBytes(32).toString('base64url');
  readonly adminToken = randomBytes(32).toString('base64url');
  pki!: TestPki;
  driver!: Driver;
  private manager: ChildProcess | undefined;
  private dispatcher: Dispatcher | undefined;
  private readonly containers = new Set<string>();
  private readonly volumes = new Set<string>();
  private counter = 0;

  constructor(
    readonly runId: string,
    readonly netnsHolder: string,
    readonly imageId: string,
    tmp: string,
  ) {
    this.id = runId;
    this.tmp = tmp;
    this.head = `ray-bench-${runId}-head`;
  }

  get managerOrigin(): string {
    return `https://127.0.0.1:${MANAGER_PORT}`;
  }

  async start(): Promise<void> {
    mkdirSync(join(this.tmp, 'pki'), { recursive: true });
    this.pki = await makePki(['127.0.0.1', 'localhost'], { dir: join(this.tmp, 'pki') });
    writeSecret(this.pki.dir, 'enrollment-token', this.enrollmentToken);
    writeSecret(this.pki.dir, 'admin-token', this.adminToken);
    await Promise.all([this.startManager(), this.startHead()]);
    this.driver = new Driver(this.head, join(this.tmp, 'driver.log'));
    const ready = await this.driver.ready();
    if (!ready.ok) throw new Error(`driver on the head: ${ready.error}`);
    log(`driver on the head: Python ${String(ready.python)}, Ray ${String(ready.ray)}`);
  }

  private async startManager(): Promise<void> {
    // The reference manager as its README runs it, on this machine's Node.js; its per-request log is kept.
    const args = [
      MANAGER_BIN,
      'serve',
      '--db',
      join(this.tmp, 'manager.db'),
      '--cert',
      this.pki.serverCert,
      '--key',
      this.pki.serverKey,
      '--host',
      '127.0.0.1',
      '--port',
      String(MANAGER_PORT),
      '--heartbeat-interval',
      '10',
      '--enrollment-token-file',
      join(this.pki.dir, 'enrollment-token'),
      '--admin-token-file',
      join(this.pki.dir, 'admin-token'),
    ];
    this.manager = spawnLogged(process.execPath, args, join(this.tmp, 'manager.log'));
    await waitFor(
      'the manager to answer',
      async () => ((await this.managerGet('/healthz')) === 200 ? true : undefined),
      30_000,
    );
  }

  private async startHead(): Promise<void> {
    this.containers.add(this.head);
    // The head's ports are moved off the ones the worker nodes pin (they share one loopback).
    await docker(
      'run',
      '-d',
      '--name',
      this.head,
      '--label',
      `${LABEL}=${this.id}`,
      `--network=container:${this.netnsHolder}`,
      '--shm-size=512m',
      '-v',
      `${join(BENCH_DIR, 'lib', 'driver.py')}:/bench/driver.py:ro`,
      '--entrypoint',
      'ray',
      this.imageId,
      ...HEAD_START_ARGS,
      // Fixed ports: the head shares the holder's loopback-only namespace with the nodes, whose ports are their own.
      '--node-manager-port=8176',
      '--object-manager-port=8177',
      '--metrics-export-port=8180',
      '--dashboard-agent-grpc-port=8178',
      '--dashboard-agent-listen-port=52400',
      '--runtime-env-agent-port=8179',
      '--min-worker-port=20002',
      '--max-worker-port=20101',
    );
  }

  async managerGet(path: string): Promise<number> {
    return (await this.managerRequest(path)).status;
  }

  async managerRequest(path: string): Promise<{ status: number; json: unknown }> {
    this.dispatcher ??= new Dispatcher({ connect: { ca: readFileSync(this.pki.caCert, 'utf8') } });
    const response = await request(`${this.managerOrigin}${path}`, {
      dispatcher: this.dispatcher,
      headers: { authorization: `Bearer ${this.adminToken}` },
    });
    const text = await response.body.text();
    return { status: response.statusCode, json: text ? (JSON.parse(text) as unknown) : null };
  }

  async providerIds(): Promise<string[]> {
    const { status, json } = await this.managerRequest('/api/providers');
    if (status !== 200) throw new Error(`GET /api/providers: ${status}`);
    return (json as { providers: Array<{ providerId: string }> }).providers.map((p) => p.providerId);
  }

  /** Starts the agent's container as the tray app would (the controller's recipe), on the shared loopback. */
  async startAgent(options: NodeOptions): Promise<WorkerNode> {
    const name = `ray-bench-${this.id}-agent-${++this.counter}`;
    const volume = `${name}-state`;
    this.volumes.add(volume);
    this.containers.add(name);
    await docker('volume', 'create', '--label', `${LABEL}=${this.id}`, volume);
    const args = agentRunArgs({
      name,
      image: this.imageId,
      gcs: GCS,
      managerUrl: `${this.managerOrigin}/api/register`,
      shape: options,
      network: `container:${this.netnsHolder}`,
      certsDir: this.pki.dir,
      extraFlags: ['--label', `${LABEL}=${this.id}`],
    });
    return this.startContainer('agent', name, args, options);
  }

  /**
   * The baseline: a plain Ray worker container, same image and same recipe, `ray start --address --block` as its
   * entry point (bench/suites/nodes/containers.ts).
   */
  async startPlain(options: NodeOptions): Promise<WorkerNode> {
    const name = `ray-bench-${this.id}-plain-${++this.counter}`;
    this.containers.add(name);
    const { args } = plainRunArgs({
      name,
      image: this.imageId,
      gcs: GCS,
      shape: options,
      network: `container:${this.netnsHolder}`,
      extraFlags: ['--label', `${LABEL}=${this.id}`],
    });
    return this.startContainer('plain', name, args, options);
  }

  private async startContainer(
    kind: WorkerNode['kind'],
    name: string,
    args: string[],
    options: NodeOptions,
  ): Promise<WorkerNode> {
    // Create + start, as the tray app does it: the time to contributing counts from here for both arms.
    const startedAt = Date.now();
    await docker('run', '-d', '--name', name, ...args);
    const mainPid = Number(await docker('inspect', '-f', '{{.State.Pid}}', name));
    const cgroup = Cgroup.ofProcess(mainPid);
    return { kind, name, startedAt, cgroup, mainPid, drainDeadlineSeconds: options.drainDeadlineSeconds };
  }

  /** The agent's Node.js process: under --init, docker-init starts tini, which starts node. */
  async agentPid(node: WorkerNode): Promise<number> {
    return waitFor(
      'the agent process',
      () => {
        const queue = [node.mainPid];
        while (queue.length) {
          const pid = queue.shift() as number;
          if (/^node\s.*agent\.mjs/.test(processTitle(pid))) return pid;
          queue.push(...children(pid));
        }
        return undefined;
      },
      30_000,
    );
  }

  /** Sends SIGTERM as `docker stop` does (to the container's PID 1) or as a service manager would (to `ray start`). */
  signal(node: WorkerNode, signal: NodeJS.Signals): void {
    process.kill(node.mainPid, signal);
  }

  /** Removes what a node left behind (container and volume, or cgroup and temp files). */
  async removeNode(node: WorkerNode): Promise<void> {
    await run('docker', ['logs', node.name]).then((r) =>
      writeFileSync(join(this.tmp, `${node.name}.log`), r.stdout + r.stderr),
    );
    // The recipe's named volumes (state, spill) are made by `docker run` itself, without the run's label: remove
    // every named volume the container had.
    const mounts = await run('docker', [
      'inspect',
      '-f',
      '{{range .Mounts}}{{if .Name}}{{.Name}} {{end}}{{end}}',
      node.name,
    ]);
    await run('docker', ['rm', '-f', '-v', node.name]);
    this.containers.delete(node.name);
    const volumes = mounts.stdout.split(/\s+/).filter(Boolean);
    if (volumes.length) await run('docker', ['volume', 'rm', '-f', ...volumes]);
    for (const volume of volumes) this.volumes.delete(volume);
  }

  async stop(): Promise<void> {
    await this.driver?.close().catch(() => undefined);
    await this.dispatcher?.close().catch(() => undefined);
    if (this.manager?.pid) {
      try {
        process.kill(-this.manager.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    const logs = await run('docker', ['logs', this.head]);
    writeFileSync(join(this.tmp, 'head.log'), logs.stdout + logs.stderr);
    if (this.containers.size) await run('docker', ['rm', '-f', '-v', ...this.containers]);
    if (this.volumes.size) await run('docker', ['volume', 'rm', '-f', ...this.volumes]);
  }
}

/** Makes the bench's venv with the cluster's Ray (the python suite's host arm), once. */
export async function ensureVenv(): Promise<string> {
  const ray = join(VENV, 'bin', 'ray');
  const version = await run(ray, ['--version']);
  if (version.code === 0 && version.stdout.includes(RAY_VERSION)) return ray;
  log(`making ${VENV} with ray==${RAY_VERSION}`);
  const python = process.env.BENCH_PYTHON ?? 'python3.11';
  await run('rm', ['-rf', VENV]);
  const made = await run(python, ['-m', 'venv', VENV]);
  if (made.code !== 0) throw new Error(`${python} -m venv: ${made.stderr}`);
  const index = process.env.BENCH_PIP_INDEX_URL ?? 'file:///opt/pypi/simple';
  const pip = await run(
    join(VENV, 'bin', 'pip'),
    ['install', '--disable-pip-version-check', '-q', '--index-url', index, `ray==${RAY_VERSION}`],
    { timeoutMs: 600_000 },
  );
  if (pip.code !== 0) throw new Error(`pip install ray==${RAY_VERSION}: ${pip.stderr}`);
  return ray;
}

/** Runs an inner suite on a cluster of its own in the loopback-only namespace, stopped afterwards whatever happens. */
export async function withBenchCluster<T>(
  context: SuiteContext,
  suite: string,
  body: (cluster: BenchCluster) => Promise<T>,
): Promise<T> {
  if (!context.holder) throw new Error(`the ${suite} suite runs in the loopback-only namespace (inner: true)`);
  const cluster = new BenchCluster(context.runId, context.holder, context.imageId, join(context.tmp, suite));
  try {
    await cluster.start();
    return await body(cluster);
  } finally {
    await cluster.stop();
  }
}
