import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AGENT_IMAGE, type Agent0, containerExit, TestCluster } from './support/cluster.js';
import { docker, lastJson, run, waitFor } from './support/run.js';

/**
 * The agent image end to end: a real Ray head (no CPUs of its own), the real manager over TLS and the real agent
 * container with the hardened flags, on a private Docker network.
 */
const cluster = new TestCluster();
let agent: Agent0;
let providerId: string;
let joinSeconds: number;

/** Runs N tasks on the cluster; each sleeps, then reports the node it ran on. */
function tasksScript(count: number, seconds: number, resource?: string): string {
  const options = resource ? `num_cpus=0.5, resources={"${resource}": 0.01}` : 'num_cpus=0.5';
  return `
import json, time, ray
ray.init(address="auto", logging_level="ERROR")
@ray.remote(${options})
def work(i):
    time.sleep(${seconds})
    return ray.get_runtime_context().get_node_id()
head = ray.get_runtime_context().get_node_id()
nodes = ray.get([work.remote(i) for i in range(${count})])
print(json.dumps({"head": head, "nodes": nodes}))
`;
}

beforeAll(async () => {
  await cluster.start();
  const started = Date.now();
  agent = await cluster.startAgent();
  const status = await agent.waitForStatus('contributing', (s) => s.state === 'contributing', 180_000);
  joinSeconds = (Date.now() - started) / 1000;
  providerId = status.registration.providerId ?? '';
  console.warn(`join time: ${joinSeconds.toFixed(1)} s from docker run to contributing`);
});

afterAll(async () => {
  await cluster.stop();
});

describe('joining and registering', () => {
  test('the agent joins the cluster, registers, and heartbeats arrive at the manager', async () => {
    const status = await agent.status();
    expect(status.state).toBe('contributing');
    expect(status.ray.state).toBe('joined');
    expect(status.ray.clusterVersion).toBe('2.58.0');
    expect(status.registration.state).toBe('registered');
    expect(providerId).toMatch(/^[a-z0-9][a-z0-9-]{2,62}$/);
    expect(status.limits).toMatchObject({ cpus: 2, memoryBytes: 4 * 1024 ** 3, source: 'cgroup' });
    // One container, as the spec's line runs it: direct mode, with no wait for a tunnel container that is not there.
    expect(status.tunnel?.state).toBe('off');
    expect(status.warnings.filter((w) => /tunnel/i.test(w))).toEqual([]);
    // Heartbeats start right after registration, before Ray joined: wait for one sent while contributing.
    const provider = await waitFor(
      'a heartbeat from the contributing agent at the manager',
      async () => {
        const found = (await cluster.providers()).find((p) => p.providerId === providerId);
        return found?.lastState === 'contributing' ? found : undefined;
      },
      30_000,
    );
    expect(provider.heartbeats).toBeGreaterThan(0);
    expect(provider.health).toBe('healthy');
    expect(provider.lastState).toBe('contributing');
    expect(provider.cpuCores).toBeGreaterThan(0);
    expect(provider.limits.cpus).toBe(2);
    expect(joinSeconds).toBeGreaterThan(0);
  });

  test('the status endpoint refuses a foreign Host header and browser requests', async () => {
    const evil = await run('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      'Host: evil.example',
      `http://127.0.0.1:${agent.statusPort}/status`,
    ]);
    expect(evil.stdout).toBe('403');
    const origin = await run('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-H',
      'Origin: http://localhost:3000',
      `http://127.0.0.1:${agent.statusPort}/status`,
    ]);
    expect(origin.stdout).toBe('403');
    const ok = await run('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://127.0.0.1:${agent.statusPort}/status`,
    ]);
    expect(ok.stdout).toBe('200');
  });

  test('the container runs as a non-root user, with no token in its environment, published on loopback only', async () => {
    expect(await docker('exec', agent.name, 'id', '-u')).toBe('1000');
    const inspect = JSON.parse(await docker('inspect', agent.name))[0];
    const env: string[] = inspect.Config.Env;
    expect(env.some((line) => line.includes(cluster.enrollmentToken))).toBe(false);
    expect(env.some((line) => line.startsWith('AGENT_TOKEN='))).toBe(false);
    expect(inspect.HostConfig.PortBindings['8765/tcp'][0].HostIp).toBe('127.0.0.1');
    const status = JSON.stringify(await agent.status());
    expect(status).not.toContain(cluster.enrollmentToken);
    expect(await agent.logs()).not.toContain(cluster.enrollmentToken);
    // The Ray processes do not inherit the token file variable, while the agent itself has it.
    const environ = (pattern: string) =>
      docker(
        'exec',
        agent.name,
        'node',
        '-e',
        `const fs = require('fs');
         const pid = fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p) && p !== String(process.pid)).find((p) => {
           try { return new RegExp(${JSON.stringify(pattern)}).test(fs.readFileSync('/proc/' + p + '/cmdline', 'utf8')); } catch { return false; }
         });
         if (!pid) { console.error('no process matches'); process.exit(3); }
         process.stdout.write(fs.readFileSync('/proc/' + pid + '/environ', 'utf8').split('\\0').join('\\n'));`,
      );
    expect(await environ('agent\\.mjs')).toContain('AGENT_TOKEN_FILE=');
    const rayEnv = await environ('/raylet/raylet');
    expect(rayEnv).toContain('RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor');
    expect(rayEnv).not.toContain('AGENT_TOKEN');
  });
});

describe('running tasks', () => {
  test('N tasks run on the agent node; status and heartbeats show N running, then 0', async () => {
    const count = 4;
    const driver = cluster.driver(tasksScript(count, 20, `provider:${providerId}`));
    const busy = await agent.waitForStatus(`${count} running tasks`, (s) => s.tasks.running === count, 90_000);
    expect(busy.tasks.running).toBe(count);
    const reported = await waitFor(
      'the manager to see the running tasks',
      async () => {
        const found = (await cluster.providers()).find((p) => p.providerId === providerId);
        return found?.activeTasks === count ? found : undefined;
      },
      20_000,
    );
    expect(reported.activeTasks).toBe(count);
    const result = await driver;
    expect(result.code, result.stderr).toBe(0);
    const { head, nodes } = lastJson<{ head: string; nodes: string[] }>(result.stdout);
    expect(nodes).toHaveLength(count);
    expect(new Set(nodes).size).toBe(1);
    expect(nodes[0]).not.toBe(head);
    const idle = await agent.waitForStatus('0 running tasks', (s) => s.tasks.running === 0, 30_000);
    expect(idle.tasks.running).toBe(0);
  });
});

describe('faults it recovers from', () => {
  test('manager down for a while: heartbeats fail, then recover, and nothing is re-registered', async () => {
    await docker('stop', cluster.manager);
    const failing = await agent.waitForStatus(
      'heartbeats failing',
      (s) => s.heartbeat.consecutiveFailures >= 2,
      60_000,
    );
    expect(failing.heartbeat.state).toBe('failing');
    expect(failing.state).toBe('contributing');
    await docker('start', cluster.manager);
    await cluster.managerStarted();
    const healthy = await agent.waitForStatus(
      'heartbeats healthy again',
      (s) => s.heartbeat.state === 'healthy',
      120_000,
    );
    expect(healthy.heartbeat.consecutiveFailures).toBe(0);
    const providers = await waitFor('the manager to answer', () => cluster.providers(), 30_000);
    expect(providers).toHaveLength(1);
    expect(providers[0]?.registrations).toBe(1);
  });

  test('head restarted: the agent goes reconnecting, then rejoins and contributes', async () => {
    await docker('restart', '-t', '2', cluster.head);
    await agent.waitForStatus('reconnecting', (s) => s.state === 'reconnecting', 60_000);
    const back = await agent.waitForStatus('contributing again', (s) => s.state === 'contributing', 180_000);
    // Without GCS fault tolerance the new head is a new cluster: the agent must have joined it afresh.
    expect(back.ray.restarts).toBeGreaterThanOrEqual(1);
    const result = await cluster.driver(tasksScript(2, 1));
    expect(result.code, result.stderr).toBe(0);
    const { nodes } = lastJson<{ nodes: string[] }>(result.stdout);
    expect(nodes).toHaveLength(2);
  });

  test('a restarted container keeps its provider ID', async () => {
    await docker('restart', '-t', '60', agent.name);
    await agent.restarted();
    const status = await agent.waitForStatus('contributing after restart', (s) => s.state === 'contributing', 180_000);
    expect(status.registration.providerId).toBe(providerId);
    const providers = await cluster.providers();
    expect(providers).toHaveLength(1);
  });
});

describe('stopping', () => {
  test('SIGTERM during tasks lets them finish within the deadline, and the container exits 0', async () => {
    const driver = cluster.driver(tasksScript(2, 12));
    await agent.waitForStatus('2 running tasks', (s) => s.tasks.running === 2, 90_000);
    await docker('kill', '--signal=SIGTERM', agent.name);
    // The drain lasts as long as the tasks (about 12 s): polled often, it cannot be missed.
    await agent.waitForStatus('draining', (s) => s.state === 'draining', 60_000, 200);
    const result = await driver;
    expect(result.code, result.stderr).toBe(0);
    expect(await containerExit(agent.name, 90_000)).toBe(0);
    const provider = (await cluster.providers()).find((p) => p.providerId === providerId);
    expect(provider?.lastState).toBe('stopped');
  });
});

describe('bad configuration', () => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    [
      'RAY_HEAD',
      { RAY_HEAD: 'http://head:10001' },
      /^ray-agent: RAY_HEAD: "http:\/\/head:10001" .+ \(e\.g\. RAY_HEAD=ray:\/\/.+\)$/,
    ],
    [
      'MANAGER_URL',
      { MANAGER_URL: 'http://manager.test/api/register' },
      /^ray-agent: MANAGER_URL: .*https.* \(e\.g\. MANAGER_URL=https:\/\/.+\)$/,
    ],
    [
      'MEMORY_LIMIT',
      { MEMORY_LIMIT: '4x' },
      /^ray-agent: MEMORY_LIMIT: "4x" has an unknown unit "x" \(e\.g\. MEMORY_LIMIT=4g.*\)$/,
    ],
  ];
  test.each(cases)('a bad %s exits 2 with one line naming it', async (_name, env, pattern) => {
    const base = {
      RAY_HEAD: 'ray://head:10001',
      MANAGER_URL: 'https://manager.test/api/register',
      AGENT_TOKEN_FILE: '/dev/null',
    };
    const merged = { ...base, ...env };
    // --network none: a config error must stop the agent before any network call.
    const result = await run('docker', [
      'run',
      '--rm',
      '--network',
      'none',
      ...Object.entries(merged).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      AGENT_IMAGE,
    ]);
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
  });
});
