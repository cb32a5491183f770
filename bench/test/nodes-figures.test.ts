import { describe, expect, it } from 'vitest';
import { judge } from '../lib/verdict.js';
import { figuresOf, rayAsk } from '../suites/nodes/figures.js';
import { type Arm, NodesData, type Pair } from '../suites/nodes/schema.js';

const MiB = 1024 ** 2;
const ASK =
  'ray start --address=127.0.0.1:6379 --block --num-cpus=2 --num-gpus=0 --memory=100 --object-store-memory=200';

function footprint(dockerMiB: number, agent?: { anonMiB: number; cpu: number }) {
  return {
    seconds: 30,
    cgroupDockerStatsBytes: dockerMiB * MiB,
    cgroupAnonShmemBytes: dockerMiB * MiB,
    processRssSumBytes: 0,
    processPssSumBytes: 0,
    processes: 10,
    cgroupCpuPercent: 1,
    ...(agent
      ? { agent: { rssBytes: 50 * MiB, rssAnonBytes: agent.anonMiB * MiB, pssBytes: 0, cpuPercent: agent.cpu } }
      : {}),
  };
}

function arm(kind: 'agent' | 'plain', rep: number, over: Partial<Arm> = {}): Arm {
  const agent = kind === 'agent';
  return {
    kind,
    position: agent ? 0 : 1,
    name: `${kind}-${rep}`,
    alive: true,
    join: {
      aliveSeconds: agent ? 3.1 : 3,
      registeredSeconds: agent ? 3.2 : null,
      contributingSeconds: agent ? 3.2 + rep * 0.01 : 3,
    },
    settle: { seconds: 4, cpuPercent: 0.2, settled: true },
    idle: footprint(agent ? 310 + rep : 300, agent ? { anonMiB: 12, cpu: 0.02 } : undefined),
    compute: {
      cpu: [{ tasks: 8, elapsed: 4, perSecond: agent ? 2 - rep * 0.001 : 2 }],
      tiny: [{ tasks: 1000, elapsed: 1, perSecond: agent ? 1000 : 1000 + rep }],
      failures: [],
      throttling: { periods: 0, throttled: 0, throttledSeconds: 0 },
    },
    ...(agent
      ? {
          status: {
            requests: 10_000,
            non2xx: 0,
            errors: 0,
            clientP99Ms: 1,
            server: {
              count: 10_000,
              within1ms: 9_000,
              within2ms: 9_950 + rep,
              buckets: [
                [0.001, 9_000],
                [0.002, 9_950 + rep],
              ],
            },
          },
        }
      : {}),
    stop: { mainExitSeconds: 1, allGoneSeconds: agent ? 1.05 + rep * 0.001 : 1 },
    rayStart: ASK,
    ...over,
  } as Arm;
}

function busyArm(kind: 'agent' | 'plain', rep: number): Arm {
  const base = arm(kind, rep);
  return {
    ...base,
    stop: {
      mainExitSeconds: 5,
      allGoneSeconds: 5.2 + (kind === 'agent' ? 0.05 : 0) + rep * 0.01,
      busy: { tasks: 2, taskSeconds: 6, remainingSeconds: 5, completed: 2, failed: 0, errors: [] },
    },
  };
}

function data(mutate: (pairs: Pair[]) => void = () => undefined): NodesData {
  const pairs: Pair[] = [0, 1, 2, 3].map((rep) => ({
    rep,
    mode: 'main',
    firstWindow: 'idle',
    roundOrder: ['agent'],
    agent: arm('agent', rep),
    plain: arm('plain', rep),
  }));
  for (const rep of [0, 1, 2])
    pairs.push({ rep, mode: 'busy', roundOrder: [], agent: busyArm('agent', rep), plain: busyArm('plain', rep) });
  mutate(pairs);
  return NodesData.parse({
    imageId: 'sha256:x',
    seed: 7,
    shape: { cpus: 2, memoryBytes: 4 * 1024 * MiB, cpuset: '0-1' },
    bareNode: { rssBytes: [42 * MiB], rssAnonBytes: [6 * MiB] },
    pairs,
  });
}

const byId = (d: NodesData) => Object.fromEntries(figuresOf(d).map((f) => [f.id, f]));

describe('nodes figuresOf', () => {
  it('pairs each agent sample with the plain sample of the same pair, and judges with the issue goals', () => {
    const figures = byId(data());
    const cpu = figures['nodes.compute.cpu'];
    expect(cpu?.subject.samples).toEqual([2, 1.999, 1.998, 1.997]);
    expect(cpu?.baseline?.samples).toEqual([2, 2, 2, 2]);
    expect(cpu?.goal).toEqual({ kind: 'ratio-at-least', value: 0.99 });
    expect(judge(cpu as never).verdict).toBe('met');
    expect(figures['nodes.join.contributing']?.subject.samples).toHaveLength(7);
    expect(figures['nodes.join.contributing']?.goal).toEqual({ kind: 'difference-at-most', value: 0.3 });
    expect(judge(figures['nodes.stop.idle'] as never).verdict).toBe('met');
    // Busy stop: stop time minus remaining task time; the plain container's same excess is the floor.
    expect(figures['nodes.stop.busy']?.subject.samples.map((v) => Number(v.toFixed(3)))).toEqual([0.25, 0.26, 0.27]);
    expect(figures['nodes.stop.busy']?.floor?.value).toBeCloseTo(0.21);
    expect(figures['nodes.agent.memory']?.subject.samples).toEqual([12, 12, 12, 12]);
    expect(figures['nodes.agent.memory']?.floor?.value).toBe(6);
    expect(figures['nodes.container.memory']?.subject.samples).toEqual([310, 311, 312, 313]);
    expect(figures['nodes.status.p99']?.subject.samples).toEqual([99.5, 99.51, 99.52, 99.53]);
    expect(judge(figures['nodes.status.p99'] as never).verdict).toBe('met');
    for (const figure of Object.values(figures))
      expect(
        figure.checks?.every((c) => c.ok),
        figure.id,
      ).toBe(true);
  });

  it('fails a check where the measurement did not do its job', () => {
    const figures = byId(
      data((pairs) => {
        const [first] = pairs;
        if (!first?.agent.compute || !first.agent.status) throw new Error('fixture');
        first.agent.compute.failures.push('cpu round 1: driver cpu: RayTaskError');
        first.agent.status.server = null;
        first.plain.rayStart = ASK.replace('--num-cpus=2', '--num-cpus=1');
        const busy = pairs.find((p) => p.mode === 'busy');
        if (busy?.plain.stop.busy) busy.plain.stop.busy.failed = 1;
      }),
    );
    const failed = (id: string) => figures[id]?.checks?.filter((c) => !c.ok).map((c) => c.what) ?? [];
    expect(failed('nodes.compute.cpu')).toHaveLength(2);
    expect(failed('nodes.status.p99')[0]).toMatch(/ray_agent_status_request_duration_seconds/);
    expect(failed('nodes.stop.busy')[0]).toMatch(/every running task finished/);
    expect(judge(figures['nodes.compute.cpu'] as never).verdict).toBe('missed');
  });

  it('reads what ray start was asked for', () => {
    expect(rayAsk(ASK)).toBe('--num-cpus=2 --memory=100 --object-store-memory=200');
    expect(rayAsk('ray start --block')).toBeUndefined();
  });
});
