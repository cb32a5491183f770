import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { DockerEndpoint } from '../src/engine/docker-endpoint.js';
import { classifyEngineError, DockerEngine, type EngineState, isDockerInstalled } from '../src/engine/docker-engine.js';
import { freePort } from './support/free-port.js';
import { hasLink, SecondDockerd } from './support/second-dockerd.js';

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

// Short paths: a unix socket path must stay under 108 bytes.
const scratch = mkdtempSync('/tmp/rap-eng-');

afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

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
    const hadDocker0 = hasLink('docker0');
    const dockerd = new SecondDockerd();
    const engine = new DockerEngine(dockerd.endpoint(), { timeoutMs: 2000 });
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
      // Watched every 200 ms; the waits only bound how long a loaded machine may take to show each state.
      stopWatch = engine.watch((state) => states.push(state), 200);
      await waitFor('not-running', 30_000);
      dockerd.start();
      await waitFor('ready', 60_000);
      expect(states.at(-1)).toMatchObject({ kind: 'ready', endpoint: `unix://${dockerd.socketPath}` });
      await dockerd.stop();
      await waitFor('not-running', 30_000);
      // watch() reports changes only: three states for three kinds in a row.
      expect(states.map((state) => state.kind)).toEqual(['not-running', 'ready', 'not-running']);
    } finally {
      stopWatch?.();
      await dockerd.remove();
    }
    expect(hasLink('docker0')).toBe(hadDocker0);
  }, 180_000);
});
