import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { DockerEndpoint } from '../src/docker-endpoint.js';
import { classifyEngineError, DockerEngine, type EngineState, isDockerInstalled } from '../src/docker-engine.js';
import { freePort } from './support/free-port.js';

// Short paths: a unix socket path must stay under 108 bytes.
const scratch = mkdtempSync('/tmp/rap-eng-');

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function hasLink(name: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function socketEndpoint(socketPath: string): DockerEndpoint {
  return {
    options: { socketPath },
    address: `unix://${socketPath}`,
    socketPath,
    source: 'default',
    description: 'test',
    warning: null,
  };
}

/** The error a real connection attempt produces. */
function connectError(options: { path: string } | { port: number; host: string }): Promise<Error> {
  return new Promise((resolve, reject) => {
    const socket = connect(options as never);
    socket.once('connect', () => {
      socket.destroy();
      reject(new Error('connected, expected a failure'));
    });
    socket.once('error', resolve);
  });
}

describe('classifyEngineError on real connection errors', () => {
  test('a missing socket (ENOENT) with docker installed is not-running; the Linux fix starts the engine', async () => {
    const error = await connectError({ path: path.join(scratch, 'missing.sock') });
    expect((error as NodeJS.ErrnoException).code).toBe('ENOENT');
    const state = classifyEngineError(error, {
      platform: 'linux',
      endpoint: socketEndpoint('/x.sock'),
      installed: true,
    });
    expect(state.kind).toBe('not-running');
    expect(state.fix).toContain('systemctl start docker');
  });

  test('a missing socket without any docker binary is not-installed', async () => {
    const error = await connectError({ path: path.join(scratch, 'missing.sock') });
    const linux = classifyEngineError(error, { platform: 'linux', endpoint: socketEndpoint('/x'), installed: false });
    expect(linux).toMatchObject({ kind: 'not-installed', message: 'Docker is not installed on this computer' });
    expect(linux.fix).toContain('docs.docker.com/engine/install');
    const mac = classifyEngineError(error, { platform: 'darwin', endpoint: socketEndpoint('/x'), installed: false });
    expect(mac.fix).toContain('Docker Desktop');
  });

  test('a socket file nobody listens on (ECONNREFUSED) is not-running; on macOS the fix is to start Docker Desktop', async () => {
    const socketPath = path.join(scratch, 'dead.sock');
    // Bound but never listening: the file stays and connections are refused.
    execFileSync('python3', [
      '-c',
      `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(socketPath)})`,
    ]);
    const error = await connectError({ path: socketPath });
    expect((error as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    const state = classifyEngineError(error, {
      platform: 'darwin',
      endpoint: socketEndpoint(socketPath),
      installed: true,
    });
    expect(state.kind).toBe('not-running');
    expect(state.fix).toContain('start Docker Desktop');
    const windows = classifyEngineError(error, {
      platform: 'win32',
      endpoint: socketEndpoint(socketPath),
      installed: true,
    });
    expect(windows.fix).toContain('Docker Desktop');
  });

  test('a refused TCP engine is not-running with a fix about DOCKER_HOST, never not-installed', async () => {
    const port = await freePort();
    const error = await connectError({ host: '127.0.0.1', port });
    const state = classifyEngineError(error, {
      platform: 'linux',
      endpoint: { address: `tcp://127.0.0.1:${port}`, socketPath: null },
      installed: false,
    });
    expect(state.kind).toBe('not-running');
    expect(state.message).toContain(`tcp://127.0.0.1:${port}`);
    expect(state.fix).toContain('DOCKER_HOST');
  });

  test('EACCES (a constructed error: tests run as root, so a real one cannot be produced here) is permission-denied', () => {
    const error = Object.assign(new Error('connect EACCES /var/run/docker.sock'), { code: 'EACCES' });
    const linux = classifyEngineError(error, {
      platform: 'linux',
      endpoint: socketEndpoint('/var/run/docker.sock'),
      installed: true,
    });
    expect(linux).toMatchObject({
      kind: 'permission-denied',
      fix: 'add your user to the docker group: sudo usermod -aG docker $USER, then log in again',
    });
    const mac = classifyEngineError(error, { platform: 'darwin', endpoint: socketEndpoint('/x'), installed: true });
    expect(mac.fix).toContain('Docker Desktop');
  });
});

describe('isDockerInstalled', () => {
  test('finds docker or dockerd on PATH, and nothing in an empty PATH', () => {
    const bin = path.join(scratch, 'bin');
    const empty = path.join(scratch, 'empty');
    mkdirSync(bin, { recursive: true });
    mkdirSync(empty, { recursive: true });
    writeFileSync(path.join(bin, 'dockerd'), '');
    expect(isDockerInstalled({ PATH: `${empty}:${bin}` }, 'linux')).toBe(true);
    expect(isDockerInstalled({ PATH: empty }, 'linux')).toBe(false);
  });
});

describe('DockerEngine against real engines', () => {
  test("the machine's engine is ready with its CPU and memory figures", async () => {
    const state = await DockerEngine.fromEnvironment().check();
    expect(state.kind).toBe('ready');
    if (state.kind !== 'ready') return;
    expect(state.cpus).toBeGreaterThan(0);
    expect(state.memoryBytes).toBeGreaterThan(512 * 1024 ** 2);
    expect(state.version).toMatch(/^\d+\.\d+/);
  });

  test('a broken DOCKER_HOST becomes a not-running state with a fix; check() does not throw', async () => {
    const state = await DockerEngine.fromEnvironment({}, { ...process.env, DOCKER_HOST: 'fd://' }).check();
    expect(state.kind).toBe('not-running');
    expect(state).toMatchObject({ message: expect.stringContaining('fd://') });
  });

  test('a second dockerd: not-running before it starts, ready once it runs (watch), not-running after it is stopped', async () => {
    const root = mkdtempSync('/tmp/rap-dd-');
    const socketPath = path.join(root, 'docker.sock');
    // Never `--bridge none`: dockerd then deletes the host's docker0, which the machine's own engine needs. A
    // bridge of our own, with an address outside Docker's pools and this machine's routes, leaves docker0 alone.
    const bridge = `rapbr${randomBytes(3).toString('hex')}`;
    const hadDocker0 = hasLink('docker0');
    execFileSync('ip', ['link', 'add', bridge, 'type', 'bridge']);
    execFileSync('ip', ['addr', 'add', '10.213.77.1/24', 'dev', bridge]);
    const engine = new DockerEngine(socketEndpoint(socketPath), { timeoutMs: 2000 });
    let daemon: ChildProcess | undefined;
    const states: EngineState[] = [];
    let stopWatch: (() => void) | undefined;
    const waitFor = async (kind: EngineState['kind'], timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (states.at(-1)?.kind !== kind) {
        if (Date.now() > deadline) throw new Error(`no ${kind} state; saw ${states.map((s) => s.kind).join(', ')}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    try {
      expect((await engine.check()).kind).toBe('not-running');
      stopWatch = engine.watch((state) => states.push(state), 200);
      await waitFor('not-running', 5000);

      daemon = spawn(
        'dockerd',
        [
          '--host',
          `unix://${socketPath}`,
          '--data-root',
          path.join(root, 'data'),
          '--exec-root',
          path.join(root, 'exec'),
          '--pidfile',
          path.join(root, 'docker.pid'),
          '--bridge',
          bridge,
          // No iptables or masquerading: the machine's engine owns those rules.
          '--iptables=false',
          '--ip-masq=false',
        ],
        { stdio: 'ignore' },
      );
      await waitFor('ready', 60_000);
      expect(states.at(-1)).toMatchObject({ kind: 'ready', endpoint: `unix://${socketPath}` });

      const exited = new Promise((resolve) => daemon?.once('exit', resolve));
      daemon.kill('SIGTERM');
      await exited;
      await waitFor('not-running', 10_000);
      // watch() reports changes only: three states for three kinds in a row.
      expect(states.map((state) => state.kind)).toEqual(['not-running', 'ready', 'not-running']);
    } finally {
      stopWatch?.();
      if (daemon !== undefined && daemon.exitCode === null && daemon.signalCode === null) {
        const exited = new Promise((resolve) => daemon?.once('exit', resolve));
        daemon.kill('SIGKILL');
        await exited;
      }
      execFileSync('ip', ['link', 'del', bridge]);
      rmSync(root, { recursive: true, force: true });
    }
    expect(hasLink('docker0')).toBe(hadDocker0);
  }, 90_000);
});
