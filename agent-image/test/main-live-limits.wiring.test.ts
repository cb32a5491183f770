import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StatusDocument } from '@ray-agent/protocol';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tempDir } from './helpers.js';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const GiB = 1024 ** 3;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The real entry point with a saved offer in its state directory; no Ray, a manager that is not there. */
async function statusWith(limitsFile: string, env: Record<string, string>): Promise<StatusDocument> {
  const stateDir = tempDir('agent-live-wiring-');
  writeFileSync(join(stateDir, 'limits.json'), limitsFile, { mode: 0o600 });
  const port = await freePort();
  const output: string[] = [];
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: {
      PATH: process.env.PATH,
      RAY_HEAD: 'ray://127.0.0.1:10001',
      MANAGER_URL: 'https://127.0.0.1:9/api/register',
      AGENT_TOKEN: 'tok_0123456789abcdef-wiring',
      STATE_DIR: stateDir,
      STATUS_HOST: '127.0.0.1',
      STATUS_PORT: String(port),
      RAY_AGENT_RAY_BIN: '/bin/false',
      RAY_AGENT_PYTHON: '/bin/false',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  onTestFinished(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  });
  for (let attempt = 0; attempt < 600; attempt += 1) {
    if (child.exitCode !== null) throw new Error(`the agent exited ${child.exitCode}: ${output.join('')}`);
    try {
      const response = await fetch(`http://127.0.0.1:${port}/status`);
      if (response.ok) return StatusDocument.parse(await response.json());
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no status: ${output.join('')}`);
}

describe('main.ts sizes Ray by the saved live offer (LIVE_LIMITS_FILE)', () => {
  it('the offer outranks CPU_LIMIT/MEMORY_LIMIT, and the throttle shows in the status', async () => {
    const offer = { cpus: 1, memoryBytes: 2 * GiB, throttleCpus: 0.5, updatedAt: '2026-12-02T04:00:00.000Z' };
    const status = await statusWith(JSON.stringify(offer), { CPU_LIMIT: '2', MEMORY_LIMIT: '3g' });
    expect(status.limits).toMatchObject({ cpus: 1, rayCpus: 1, memoryBytes: 2 * GiB, throttleCpus: 0.5 });
  });

  it('an invalid file is ignored with a warning, and the environment decides', async () => {
    const status = await statusWith('{"cpus": "lots"}', { CPU_LIMIT: '1', MEMORY_LIMIT: '3g' });
    expect(status.limits).toMatchObject({ cpus: 1, memoryBytes: 3 * GiB, throttleCpus: null });
    expect(status.warnings.some((w) => /limits\.json: cpus: .*ignored/.test(w))).toBe(true);
  });
});
