import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gcsConnected } from '../src/ray/gcs-probe.js';
import { StatusModel } from '../src/status/status-model.js';
import { buildStatusServer, listeningPort } from '../src/status/status-server.js';
import { freePort } from './agent-process.js';
import { tempDir } from './helpers.js';

const HEALTHCHECK = fileURLToPath(new URL('../src/healthcheck.sh', import.meta.url));

function healthcheck(port: number): Promise<number> {
  return new Promise((resolve) => {
    execFile('bash', [HEALTHCHECK], { env: { STATUS_PORT: String(port) }, timeout: 10_000 }, (error) =>
      resolve(error ? Number((error as NodeJS.ErrnoException).code ?? 1) : 0),
    );
  });
}

describe("Docker's HEALTHCHECK script (bash /dev/tcp, no Node.js start)", () => {
  it('is healthy while /healthz answers 200, unhealthy once the agent is in error, and when nothing listens', async () => {
    const model = new StatusModel('0.0.0-test', 'head:6379', 'https://m.test', {
      cpus: 1,
      memoryBytes: 2 ** 30,
      objectStoreBytes: 2 ** 28,
      shmBytes: null,
      source: 'env',
    });
    const server = buildStatusServer(model);
    await server.listen({ host: '127.0.0.1', port: 0 });
    const port = listeningPort(server);
    try {
      expect(await healthcheck(port)).toBe(0);
      model.setState('error');
      expect(await healthcheck(port)).toBe(1);
    } finally {
      await server.close();
    }
    expect(await healthcheck(await freePort())).not.toBe(0);
  });
});

describe('gcsConnected: the raylet holds a connection to the GCS port (read from /proc/net/tcp*)', () => {
  const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
  // 10.0.0.2:40000 -> 10.0.0.1:6379 (0x18EB); state 01 = ESTABLISHED, 06 = TIME_WAIT.
  const line = (state: string, port = '18EB') =>
    `   0: 0200000A:9C40 0100000A:${port} ${state} 00000000:00000000 00:00000000 00000000  1000        0 1 1\n`;
  const procNet = (tcp: string, tcp6?: string) => {
    const dir = join(tempDir('ra-h5-procnet-'), 'net');
    mkdirSync(dir);
    writeFileSync(join(dir, 'tcp'), header + tcp);
    if (tcp6 !== undefined) writeFileSync(join(dir, 'tcp6'), header + tcp6);
    return dir;
  };

  it('sees an established connection to the port, in tcp or tcp6', () => {
    expect(gcsConnected(6379, procNet(line('01')))).toBe(true);
    expect(gcsConnected(6379, procNet('', line('01')))).toBe(true);
  });

  it('does not take a closing connection, another port, or no file for one', () => {
    expect(gcsConnected(6379, procNet(line('06')))).toBe(false);
    expect(gcsConnected(6379, procNet(line('01', '18EC')))).toBe(false);
    expect(gcsConnected(6379, '/nonexistent-proc-net')).toBe(false);
  });
});
