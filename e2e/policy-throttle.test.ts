import { existsSync, readFileSync } from 'node:fs';
import { AGENT_CONTROL_BUNDLE, type StatusDocument } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AgentContainer, type AgentSpec } from '../controller/src/container/agent-container.js';
import { resolveDockerEndpointFromProcess } from '../controller/src/engine/docker-endpoint.js';
import { createDockerode } from '../controller/src/engine/docker-engine.js';
import { containerActuator } from '../controller/src/policy/container-actuator.js';
import { AGENT_IMAGE, TestCluster } from './support/cluster.js';
import { freePort, lastLine } from './support/faults.js';
import { run, waitFor } from './support/run.js';

/**
 * Issue 10, parts 2 and 4: stepping aside and live limits against the real Docker Engine, a real Ray head, the
 * real manager over TLS and a real agent made by AgentContainer.up, running real CPU-bound Ray tasks. The
 * container's CPU use is read from its own cgroup on the host (v1 cpuacct.usage or v2 cpu.stat usage_usec).
 * Figures are printed at the end (the time to step aside goes in the closing note).
 */
const cluster = new TestCluster();
const MiB = 1024 ** 2;
const CPUS = 2;
const figures: Array<[string, string]> = [];
let dockerode: Dockerode;
let agent: AgentContainer;
let spec: AgentSpec;
let statusPort: number;
let hasBundle = false;
const name = `ra-policy-${cluster.id}`;

async function status(): Promise<StatusDocument> {
  return (await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as StatusDocument;
}

/** The host's cgroup file that counts the container's CPU time, and how to read it in seconds. */
function cpuCounter(id: string): () => number {
  const v1 = [
    `/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`,
    `/sys/fs/cgroup/cpu,cpuacct/docker/${id}/cpuacct.usage`,
  ];
  const v2 = [`/sys/fs/cgroup/system.slice/docker-${id}.scope/cpu.stat`, `/sys/fs/cgroup/docker/${id}/cpu.stat`];
  for (const path of v1) if (existsSync(path)) return () => Number(readFileSync(path, 'utf8').trim()) / 1e9;
  for (const path of v2)
    if (existsSync(path))
      return () => Number(/usage_usec (\d+)/.exec(readFileSync(path, 'utf8'))?.[1] ?? Number.NaN) / 1e6;
  throw new Error(`no cgroup CPU counter for container ${id} under /sys/fs/cgroup`);
}

/** Samples the counter every `everyMs`; windows of CPU use (cores) with their end times. */
class CpuSampler {
  readonly samples: Array<{ t: number; cpu: number }> = [];
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly read: () => number) {}
  start(everyMs = 50): void {
    this.samples.push({ t: performance.now(), cpu: this.read() });
    this.timer = setInterval(() => this.samples.push({ t: performance.now(), cpu: this.read() }), everyMs);
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
  /** Mean cores over [from, to] (ms, performance.now()). */
  cores(from: number, to: number): number {
    const inside = this.samples.filter((s) => s.t >= from && s.t <= to);
    const first = inside[0];
    const last = inside.at(-1);
    if (!first || !last || last.t - first.t < 100) return Number.NaN;
    return (last.cpu - first.cpu) / ((last.t - first.t) / 1000);
  }
  /** The end of the first window of `windowMs` starting after `from` whose use is below `bound` cores. */
  firstBelow(from: number, bound: number, windowMs: number): number | null {
    for (const start of this.samples.filter((s) => s.t >= from)) {
      const end = this.samples.find((s) => s.t >= start.t + windowMs);
      if (!end) return null;
      if ((end.cpu - start.cpu) / ((end.t - start.t) / 1000) < bound) return end.t;
    }
    return null;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * CPU-bound tasks, one whole CPU each, on this agent: each spins until it has used `cpuSeconds` of CPU time (so a
 * throttle slows it and does not end it), then reports that time and its node.
 */
function busyScript(count: number, cpuSeconds: number, resource: string): string {
  return `
import json, time, ray
ray.init(address="auto", logging_level="ERROR")
@ray.remote(num_cpus=1, max_retries=0, resources={"${resource}": 0.01})
def spin(i):
    start = time.process_time()
    x = 0
    while time.process_time() - start < ${cpuSeconds}:
        for _ in range(10000):
            x += 1
    return {"i": i, "cpu": time.process_time() - start, "node": ray.get_runtime_context().get_node_id()}
results = ray.get([spin.remote(i) for i in range(${count})])
print(json.dumps(results))
`;
}

beforeAll(async () => {
  dockerode = createDockerode(resolveDockerEndpointFromProcess());
  const listing = await run('docker', ['run', '--rm', '--entrypoint', 'ls', AGENT_IMAGE, '/opt/ray-agent']);
  hasBundle = listing.stdout.split('\n').includes(AGENT_CONTROL_BUNDLE.split('/').at(-1) ?? '');
  figures.push([
    'control bundle in the image',
    hasBundle ? 'yes: Ray-view assertions ran' : 'no: Ray-view assertions skipped',
  ]);
  await cluster.start();
  agent = new AgentContainer(dockerode, { name });
  await cluster.track(name);
  statusPort = await freePort();
  spec = {
    image: AGENT_IMAGE,
    clusterAddress: `ray://${cluster.head}:10001`,
    managerUrl: `https://${cluster.manager}:8443/api/register`,
    cpus: CPUS,
    memoryBytes: 2048 * MiB,
    statusPort,
    token: cluster.enrollmentToken,
    managerCaPem: readFileSync(cluster.pki.caCert, 'utf8'),
    drainDeadlineSeconds: 10,
    tunnel: false,
    network: cluster.network,
    name,
    extraEnv: { HEARTBEAT_INTERVAL: '2' },
  };
  const up = await agent.up(spec);
  expect(up.outcome).toBe('created');
  await waitFor(
    'the agent to contribute',
    async () => ((await status()).state === 'contributing' ? true : undefined),
    400_000,
  );
});

afterAll(async () => {
  for (const [what, figure] of figures) console.warn(`figure: ${what}: ${figure}`);
  // The cluster keeps every container's log (ours is tracked), then removes them; the volumes go after.
  await cluster.stop();
  await agent?.down({ removeState: true, timeoutSeconds: 5 }).catch(() => undefined);
});

describe('stepping aside: the throttle', () => {
  test('the CPU use drops to about the throttle within a second, the tasks keep running and all return after full', async () => {
    const actuator = containerActuator({ agent, spec: () => spec });
    const providerId = (await status()).registration.providerId ?? '';
    const id = (await agent.status()).id ?? '';
    const sampler = new CpuSampler(cpuCounter(id));
    sampler.start();
    try {
      const driver = cluster.driver(busyScript(CPUS, 25, `provider:${providerId}`), 400_000);
      await waitFor(
        'both tasks running',
        async () => ((await status()).tasks.running === CPUS ? true : undefined),
        120_000,
        250,
      );
      await sleep(3000);
      const fullFrom = performance.now();
      await sleep(2000);
      const before = sampler.cores(fullFrom, performance.now());
      // Two spinning tasks on a 2-core machine that others share: well above the throttle, whatever the load.
      expect(before).toBeGreaterThan(0.6);

      const throttleCpus = CPUS * 0.1;
      const called = performance.now();
      await actuator.apply({ kind: 'throttled', cpuFraction: 0.1 });
      const returned = performance.now();
      await sleep(3000);
      // 3 CFS periods per window; a bound of twice the throttle leaves room for the period's edges.
      const bound = Math.max(0.4, throttleCpus * 2);
      const below = sampler.firstBelow(called, bound, 300);
      expect(below, 'a 300 ms window below the bound after the throttle').not.toBeNull();
      const stepAsideMs = (below as number) - called;
      // Within a second of docker update's return (apply returns after it, and after telling the agent).
      expect(stepAsideMs).toBeLessThan(returned - called + 1000);
      const held = sampler.cores(returned + 500, performance.now());
      expect(held).toBeLessThan(bound);
      // Still running: the tasks use what the throttle leaves them, and Ray still runs both.
      expect(held).toBeGreaterThan(0.02);
      expect((await status()).tasks.running).toBe(CPUS);
      figures.push([
        'time to step aside (apply called to the first 300 ms cgroup window below the bound)',
        `${stepAsideMs.toFixed(0)} ms (apply returned after ${(returned - called).toFixed(0)} ms); CPU use ${before.toFixed(2)} cores before, ${held.toFixed(2)} throttled (throttle ${throttleCpus}, bound ${bound})`,
      ]);
      const inspect = await dockerode.getContainer(id).inspect();
      expect(inspect.HostConfig.NanoCpus).toBe(throttleCpus * 1e9);

      // Applying the same target again changes nothing; a restarted controller's up() adopts a throttled container.
      await actuator.apply({ kind: 'throttled', cpuFraction: 0.1 });
      const adopted = await agent.up(spec);
      expect(adopted).toMatchObject({ outcome: 'adopted', id });
      if (hasBundle) {
        // The agent recorded the throttle, so up() keeps it (lifting it is the policy's call).
        expect((await dockerode.getContainer(id).inspect()).HostConfig.NanoCpus).toBe(throttleCpus * 1e9);
        // Ray's view stays at the offer while stepping aside.
        expect((await status()).limits.rayCpus).toBe(CPUS);
        await actuator.apply({ kind: 'throttled', cpuFraction: 0.1 });
      } else {
        // An image without the control bundle has no record: up() brings it to the offer; the policy throttles again.
        await actuator.apply({ kind: 'throttled', cpuFraction: 0.1 });
        expect((await dockerode.getContainer(id).inspect()).HostConfig.NanoCpus).toBe(throttleCpus * 1e9);
      }

      const lift = performance.now();
      await actuator.apply({ kind: 'full' });
      await sleep(3000);
      expect(sampler.cores(lift + 1000, performance.now())).toBeGreaterThan(0.6);
      expect((await dockerode.getContainer(id).inspect()).HostConfig.NanoCpus).toBe(CPUS * 1e9);

      const result = await driver;
      expect(result.code, result.stderr.slice(-2000)).toBe(0);
      const results = JSON.parse(lastLine(result.stdout)) as Array<{ i: number; cpu: number }>;
      expect(results.map((r) => r.i).sort()).toEqual([0, 1]);
      for (const r of results) expect(r.cpu).toBeGreaterThanOrEqual(25);
      // Never restarted along the way.
      expect((await agent.status()).id).toBe(id);
      expect((await agent.status()).restartCount).toBe(0);
    } finally {
      sampler.stop();
    }
  }, 600_000);
});

describe('live limits through up()', () => {
  test('new CPU and memory limits apply to the running container: same ID, StartedAt unchanged', async () => {
    const before = await dockerode.getContainer(name).inspect();
    const changed = { ...spec, cpus: 1.5, memoryBytes: 2560 * MiB };
    const result = await agent.up(changed);
    expect(result).toMatchObject({ outcome: 'adopted', id: before.Id });
    const after = await dockerode.getContainer(name).inspect();
    expect(after.HostConfig).toMatchObject({ NanoCpus: 1.5e9, Memory: 2560 * MiB, MemorySwap: 2560 * MiB });
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
    expect(after.State.Running).toBe(true);
    if (hasBundle) {
      expect(result.liveLimits?.reply?.ok).toBe(true);
      // Ray schedules whole CPUs: 1.5 gives 1, live when Ray can resize, else said so.
      if (result.liveLimits?.resizedLive) {
        expect(result.liveLimits.rayCpus).toBe(1);
        await waitFor(
          'the status to show 1 Ray CPU',
          async () => ((await status()).limits.rayCpus === 1 ? true : undefined),
          30_000,
        );
      } else expect(result.warnings.join(' ')).toMatch(/Ray's own view did not follow/);
    } else {
      expect(result.liveLimits?.resizedLive).toBe(false);
      expect(result.warnings.join(' ')).toMatch(/older and cannot resize Ray live/);
    }
    figures.push([
      'live change 2 CPUs/2 GiB -> 1.5 CPUs/2.5 GiB',
      `no restart; Ray's view ${result.liveLimits?.resizedLive ? `followed (${result.liveLimits.rayCpus} CPUs)` : 'did not follow'}`,
    ]);
    spec = changed;
  }, 120_000);
});
