import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { buildServer } from '@ray-agent/manager/server';
import { Store } from '@ray-agent/manager/store';
import { StatusDocument } from '@ray-agent/protocol';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { sendControl } from '../src/control/control-client.js';
import { fakeGcs, getLocal, startAgentProcess } from './agent-process.js';
import { makeTls, tempDir, waitFor } from './helpers.js';

/**
 * The running agent (main.ts) with the real manager over TLS, Ray's CLI and python3 stood in for (agent-process.ts):
 * the stand-in python answers node_control.py with something that is not a reply, as a Ray that refuses would, so
 * this covers the refusal paths; the e2e test (e2e/agent-control.test.ts) covers real Ray's resize and drain.
 */
describe('control requests to the running agent (Ray stood in for)', () => {
  it('a refused live resize says a restart is needed; a drain stops Ray, never restarts it, and heartbeats go on', async () => {
    const dir = tempDir('agent-control-process-');
    const tls = makeTls(dir);
    const store = new Store(join(dir, 'manager.db'));
    const { token } = store.createEnrollmentToken({ label: 'agent-control' });
    let heartbeats = 0;
    const manager = buildServer({
      store,
      tls: { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) },
      heartbeatIntervalSeconds: 1,
      logger: pino({ level: 'silent' }),
    });
    manager.addHook('onRequest', async (request) => {
      if (request.url === '/api/heartbeat') heartbeats += 1;
    });
    await manager.listen({ host: '127.0.0.1', port: 0 });
    const gcs = await fakeGcs();
    onTestFinished(async () => {
      await manager.close();
      gcs.server.close();
    });
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir);
    writeFileSync(join(dir, 'agent-token'), `${token}\n`);
    const agent = await startAgentProcess(dir, {
      RAY_HEAD: `127.0.0.1:${gcs.port}`,
      MANAGER_URL: `https://127.0.0.1:${(manager.server.address() as AddressInfo).port}/api/register`,
      MANAGER_CA_FILE: tls.caFile,
      AGENT_TOKEN_FILE: join(dir, 'agent-token'),
      STATE_DIR: stateDir,
      CPU_LIMIT: '2',
      MEMORY_LIMIT: '2g',
      NODE_IP_ADDRESS: '127.0.0.1',
      DRAIN_DEADLINE: '5',
    });
    onTestFinished(async () => {
      if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
      await agent.exited;
    });
    const status = async () => {
      const answer = await getLocal(agent.statusPort, '/status').catch(() => undefined);
      return answer?.status === 200 ? StatusDocument.parse(JSON.parse(answer.body)) : undefined;
    };
    let joined = false;
    for (const until = Date.now() + 90_000; !joined && Date.now() < until; ) {
      joined = (await status())?.state === 'contributing';
      if (!joined) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(joined, agent.stdout().slice(-3000)).toBe(true);

    const limits = await sendControl(
      JSON.stringify({ command: 'limits', cpus: 1, memoryBytes: 2 * 1024 ** 3, throttleCpus: 0.5 }),
      stateDir,
    );
    expect(limits).toMatchObject({ ok: true, rayCpus: 2, resizedLive: false });
    expect(limits.message).toMatch(/refused the live resize.*until the agent is restarted/);
    expect((await status())?.limits).toMatchObject({ cpus: 1, rayCpus: 2, throttleCpus: 0.5 });
    expect(existsSync(join(stateDir, 'limits.json'))).toBe(true);

    const drain = await sendControl(
      JSON.stringify({ command: 'drain', deadlineSeconds: 5, reason: 'pause' }),
      stateDir,
    );
    expect(drain).toMatchObject({ ok: true, tasksLeft: 0 });
    const starts = () =>
      agent
        .rayRecord()
        .split('\n')
        .filter((line) => line.startsWith('argv: start')).length;
    expect(starts()).toBe(1);
    const after = await status();
    expect(after).toMatchObject({ state: 'draining', ray: { state: 'stopped', restarts: 0 } });
    expect(after?.lastError?.code).toBe('paused');

    // Seconds later: still one `ray start`, still heartbeating, still up.
    const beats = heartbeats;
    expect(await waitFor(() => heartbeats >= beats + 3, 30_000)).toBe(true);
    expect(starts()).toBe(1);
    expect((await status())?.ray.state).toBe('stopped');
    expect(agent.child.exitCode).toBeNull();

    // A stop signal now ends the agent cleanly.
    agent.child.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
  });
});
