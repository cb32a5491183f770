import { AGENT_CONTROL_BUNDLE, AgentControlReply, type AgentControlRequest } from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Agent0, TestCluster } from './support/cluster.js';
import { docker, run, waitFor } from './support/run.js';

/**
 * The controller's requests to a running agent, as the controller sends them (`docker exec <agent> node
 * control.mjs '<json>'`), against a real Ray head (no CPUs of its own), the real manager over TLS and the real agent
 * container: live limits resize Ray's view with no restart, and a drain lets running tasks finish, stops Ray and
 * keeps it stopped while the container runs on.
 */
const cluster = new TestCluster();
let agent: Agent0;
let startedAt: string;

async function control(request: AgentControlRequest | string): Promise<{ code: number; reply: AgentControlReply }> {
  const text = typeof request === 'string' ? request : JSON.stringify(request);
  const result = await run('docker', ['exec', agent.name, 'node', AGENT_CONTROL_BUNDLE, text], {
    timeoutMs: 180_000,
  });
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  return { code: result.code ?? -1, reply: AgentControlReply.parse(JSON.parse(line)) };
}

/** The CPUs the cluster schedules (the head has none: all are the agent's), as a driver sees them. */
async function clusterCpus(): Promise<number> {
  const result = await cluster.driver(`
import json, ray
ray.init(address="auto", logging_level="ERROR")
print(json.dumps(ray.cluster_resources().get("CPU", 0)))
`);
  return Number(result.stdout.trim().split('\n').at(-1));
}

async function inspectState(): Promise<{ Running: boolean; StartedAt: string; RestartCount: number }> {
  const [inspect] = JSON.parse(await docker('inspect', agent.name));
  return { ...inspect.State, RestartCount: inspect.RestartCount };
}

beforeAll(async () => {
  await cluster.start();
  // On a loaded 2-core machine Ray's head can time out while it starts; let Docker start it again (the agent rejoins).
  await docker('update', '--restart=on-failure:5', cluster.head);
  agent = await cluster.startAgent({ flags: ['--cpus=2', '--memory=4g'] });
  await agent.waitForStatus('contributing', (s) => s.state === 'contributing', 400_000);
  startedAt = (await inspectState()).StartedAt;
});

afterAll(async () => {
  await cluster.stop();
});

describe('control requests over docker exec', () => {
  test('a bad request is refused with a message naming the field, and exit code 1', async () => {
    const { code, reply } = await control(
      '{"command":"limits","cpus":-1,"memoryBytes":4294967296,"throttleCpus":null}',
    );
    expect(code).toBe(1);
    expect(reply.ok).toBe(false);
    expect(reply.message).toMatch(/^cpus: /);
    const unknown = await control('{"command":"reboot"}');
    expect(unknown.code).toBe(1);
    expect(unknown.reply.message).toMatch(/command/);
  });

  test('limits with fewer CPUs resize Ray live; a throttle leaves Ray its CPUs; no restart', async () => {
    expect(await clusterCpus()).toBe(2);
    const joinedAt = (await agent.status()).ray.joinedAt;

    const smaller = await control({ command: 'limits', cpus: 1, memoryBytes: 3 * 1024 ** 3, throttleCpus: null });
    expect(smaller.code).toBe(0);
    expect(smaller.reply).toMatchObject({ ok: true, rayCpus: 1, resizedLive: true });
    await waitFor(
      'the cluster to schedule 1 CPU',
      async () => ((await clusterCpus()) === 1 ? true : undefined),
      60_000,
    );
    const status = await agent.status();
    expect(status.limits).toMatchObject({ cpus: 1, rayCpus: 1, throttleCpus: null });

    const throttled = await control({ command: 'limits', cpus: 2, memoryBytes: 4 * 1024 ** 3, throttleCpus: 0.5 });
    expect(throttled.reply).toMatchObject({ ok: true, rayCpus: 2, resizedLive: true });
    await waitFor(
      'the cluster to schedule 2 CPUs',
      async () => ((await clusterCpus()) === 2 ? true : undefined),
      60_000,
    );
    expect((await agent.status()).limits).toMatchObject({ cpus: 2, rayCpus: 2, throttleCpus: 0.5 });
    // The offer outlives the agent: it is on the state volume, where a restarted agent reads it.
    const saved = JSON.parse(await docker('exec', agent.name, 'cat', '/var/lib/ray-agent/limits.json'));
    expect(saved).toMatchObject({ cpus: 2, memoryBytes: 4 * 1024 ** 3, throttleCpus: 0.5 });

    const full = await control({ command: 'limits', cpus: 2, memoryBytes: 4 * 1024 ** 3, throttleCpus: null });
    expect(full.reply).toMatchObject({ ok: true, rayCpus: 2 });

    const after = await agent.status();
    expect(after.ray).toMatchObject({ state: 'joined', restarts: 0, joinedAt });
    expect(await inspectState()).toMatchObject({ Running: true, StartedAt: startedAt, RestartCount: 0 });
  });

  test('a drain lets running tasks finish and return, stops Ray and keeps it stopped; the names showed meanwhile', async () => {
    const driver = cluster.driver(`
import json, time, ray
ray.init(address="auto", logging_level="ERROR")
@ray.remote(num_cpus=1)
def slow_square(i):
    time.sleep(10)
    return i * i, ray.get_runtime_context().get_node_id()
results = ray.get([slow_square.remote(i) for i in range(2)])
print(json.dumps({"values": [v for v, _ in results], "nodes": sorted({n for _, n in results})}))
`);
    const running = await agent.waitForStatus(
      'both tasks running, by name',
      (s) => s.tasks.byName?.some((entry) => entry.name === 'slow_square' && entry.count === 2) === true,
      90_000,
    );
    expect(running.tasks.running).toBe(2);

    const { code, reply } = await control({ command: 'drain', deadlineSeconds: 60, reason: 'pause' });
    expect(code).toBe(0);
    expect(reply).toMatchObject({ ok: true, tasksLeft: 0 });

    const result = await driver;
    expect(result.code, result.stderr).toBe(0);
    const outcome = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '{}');
    expect(outcome.values).toEqual([0, 1]);
    expect(outcome.nodes).toHaveLength(1);

    const stopped = await agent.status();
    expect(stopped.state).toBe('draining');
    expect(stopped.ray.state).toBe('stopped');
    expect(stopped.lastError?.code).toBe('paused');
    expect(stopped.tasks.completed).toBeGreaterThanOrEqual(2);
    // The node left the cluster: Ray itself lists it dead.
    const nodes = await cluster.driver(`
import json, ray
ray.init(address="auto", logging_level="ERROR")
print(json.dumps({n["NodeID"]: n["Alive"] for n in ray.nodes()}))
`);
    const alive = JSON.parse(nodes.stdout.trim().split('\n').at(-1) ?? '{}');
    expect(alive[outcome.nodes[0]]).toBe(false);

    // It stays down while the container runs on and heartbeats: no Ray restart, no container restart.
    const beat = stopped.heartbeat.lastSuccessAt;
    await agent.waitForStatus('a later heartbeat', (s) => s.heartbeat.lastSuccessAt !== beat, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    const later = await agent.status();
    expect(later).toMatchObject({ state: 'draining', ray: { state: 'stopped', restarts: 0 } });
    const raylets = await run('docker', [
      'exec',
      agent.name,
      'sh',
      '-c',
      'cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" "\\n" | grep -c "[/]raylet$" || true',
    ]);
    expect(raylets.stdout.trim()).toBe('0');
    expect(await inspectState()).toMatchObject({ Running: true, StartedAt: startedAt, RestartCount: 0 });
    expect(await clusterCpus()).toBe(0);

    // Asking again gives the same answer at once.
    const again = await control({ command: 'drain', deadlineSeconds: 60, reason: 'pause' });
    expect(again.reply).toMatchObject({ ok: true, tasksLeft: 0 });
  });
});
