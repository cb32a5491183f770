import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The real agent (src/main.ts through tsx, wired exactly as in the image) as a child process, with Ray's CLI and
 * the image's python3 replaced by the two small scripts below (RAY_AGENT_RAY_BIN, RAY_AGENT_PYTHON). Everything
 * else is real: config, state directory, manager client, supervisor, status endpoint, logs.
 */
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

/**
 * Ray's CLI. `ray start --block` says it started and blocks until SIGTERM, then exits 1 as Ray 2.58 does after a
 * drain; `ray stop` does nothing. Every call appends its arguments and environment (what Ray, and so every Ray
 * task, would be given) to $FAKE_RAY_RECORD.
 */
const FAKE_RAY = `#!/bin/sh
{ echo "argv: $*"; env; echo; } >>"$FAKE_RAY_RECORD"
if [ "$1" = start ]; then
  echo 'Ray runtime started.'
  trap 'exit 1' TERM
  while :; do sleep 1 & wait $!; done
fi
`;

/** python3, for the agent's two uses of it: the version probe (-c) and cluster_info.py (a head that matches). */
const FAKE_PYTHON = `#!/bin/sh
if [ "$1" = -c ]; then echo '2.58.0 3.11.2'; exit 0; fi
echo '{"status":"ok","rayVersion":"2.58.0","pythonVersion":"3.11.2","clusterRayVersion":"2.58.0","clusterPythonVersion":"3.11.2","clusterId":"0123456789abcdef"}'
`;

export interface AgentProcess {
  child: ChildProcess;
  statusPort: number;
  /** Everything the agent printed so far. */
  stdout(): string;
  stderr(): string;
  /** Every call of the fake Ray CLI: arguments and environment. */
  rayRecord(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A loopback port nobody listens on (the OS picked it; a race with another process is unlikely and loud). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A loopback TCP port that accepts connections: to the agent's GCS probe, a head that answers. */
export async function fakeGcs(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/**
 * Starts the agent in `dir` (fake Ray and python there too) with `env` on top of a minimal environment. The caller
 * sets the agent's variables (RAY_HEAD, MANAGER_URL, AGENT_TOKEN_FILE, STATE_DIR...); STATUS_PORT is chosen here.
 */
export async function startAgentProcess(dir: string, env: Record<string, string>): Promise<AgentProcess> {
  const ray = join(dir, 'fake-ray');
  const python = join(dir, 'fake-python');
  const record = join(dir, 'fake-ray-record');
  writeFileSync(ray, FAKE_RAY);
  writeFileSync(python, FAKE_PYTHON);
  chmodSync(ray, 0o755);
  chmodSync(python, 0o755);
  const statusPort = await freePort();
  // `--import tsx` resolves from cwd: the repository root, where tsx is installed.
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      STATUS_HOST: '127.0.0.1',
      STATUS_PORT: String(statusPort),
      RAY_AGENT_RAY_BIN: ray,
      RAY_AGENT_PYTHON: python,
      FAKE_RAY_RECORD: record,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close' comes after the pipes are drained, so the output is whole.
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    statusPort,
    stdout: () => stdout,
    stderr: () => stderr,
    rayRecord: () => (existsSync(record) ? readFileSync(record, 'utf8') : ''),
    exited,
  };
}

/** GET on the agent's status endpoint, as the tray app sends it (loopback Host, no Origin). */
export function getLocal(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}` }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
