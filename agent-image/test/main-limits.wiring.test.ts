import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { StatusDocument } from '@ray-agent/protocol';
import { describe, expect, it, onTestFinished } from 'vitest';
import { cgroupReader } from '../src/limits/cgroup.js';
import { tempDir } from './helpers.js';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

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

/** The real agent entry point, with no Ray and a manager that refuses connections: enough to publish its limits. */
async function startAgent(
  env: Record<string, string>,
): Promise<{ port: number; child: ChildProcess; output: string[] }> {
  const port = await freePort();
  const output: string[] = [];
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: {
      PATH: process.env.PATH,
      RAY_HEAD: 'ray://127.0.0.1:10001',
      // Port 9 on loopback: nothing listens, so registration retries and never leaves this machine.
      MANAGER_URL: 'https://127.0.0.1:9/api/register',
      AGENT_TOKEN: 'tok_0123456789abcdef-wiring',
      STATE_DIR: tempDir('agent-wiring-'),
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
  return { port, child, output };
}

/** Polls until the status endpoint answers; the bound is only there so a broken agent fails instead of hanging. */
async function readStatus(agent: { port: number; child: ChildProcess; output: string[] }): Promise<StatusDocument> {
  for (let attempt = 0; attempt < 600; attempt += 1) {
    if (agent.child.exitCode !== null)
      throw new Error(`the agent exited ${agent.child.exitCode}: ${agent.output.join('')}`);
    try {
      const response = await fetch(`http://127.0.0.1:${agent.port}/status`);
      if (response.ok) return StatusDocument.parse(await response.json());
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no status: ${agent.output.join('')}`);
}

describe("main.ts publishes the limits Ray really runs under (the real entry point's wiring)", () => {
  it('a CPU_LIMIT and MEMORY_LIMIT above what the machine has are cut to it, warned about, and Ray gets whole CPUs', async () => {
    const agent = await startAgent({ CPU_LIMIT: '4096', MEMORY_LIMIT: '1t' });
    const status = await readStatus(agent);
    const cgroup = cgroupReader();
    const hasCpus = Math.min(cgroup.cpuLimit() ?? Number.POSITIVE_INFINITY, os.availableParallelism());
    const hasMemory = Math.min(cgroup.memoryLimit() ?? Number.POSITIVE_INFINITY, os.totalmem());
    expect(status.limits.cpus).toBe(hasCpus);
    expect(status.limits.memoryBytes).toBe(hasMemory);
    expect(status.limits.rayCpus).toBe(Math.max(1, Math.floor(hasCpus)));
    const { objectStoreBytes, rayMemoryBytes } = status.limits;
    expect(objectStoreBytes + (rayMemoryBytes ?? Number.POSITIVE_INFINITY)).toBeLessThanOrEqual(hasMemory);
    expect(status.warnings.some((w) => w.startsWith('CPU_LIMIT asks for 4096 CPUs but '))).toBe(true);
    expect(status.warnings.some((w) => w.startsWith('MEMORY_LIMIT asks for 1 TiB but '))).toBe(true);
    // The same sentences reach the log, for `docker logs`.
    expect(agent.output.join('')).toContain('CPU_LIMIT asks for 4096 CPUs but ');
  });

  it.skipIf(Math.min(cgroupReader().cpuLimit() ?? Number.POSITIVE_INFINITY, os.availableParallelism()) < 1.5)(
    'a 1.5-CPU limit is shown as 1.5, with the 1 CPU Ray schedules beside it',
    async () => {
      const status = await readStatus(await startAgent({ CPU_LIMIT: '1.5', MEMORY_LIMIT: '2g' }));
      expect(status.limits).toMatchObject({ cpus: 1.5, rayCpus: 1, memoryBytes: 2 * 1024 ** 3, source: 'env' });
      expect(status.warnings.filter((w) => /CPU_LIMIT|MEMORY_LIMIT/.test(w))).toEqual([]);
    },
  );
});
