import { describe, expect, test } from 'vitest';
import { Figure } from '../lib/figure.js';
import { suite } from '../suites/limits/index.js';
import type { LimitsData } from '../suites/limits/schema.js';

const MiB = 1024 ** 2;

const memoryTrial = {
  limitBytes: 2048 * MiB,
  taskMiB: 3072,
  outcome: 'killed-by-ray',
  error: 'OutOfMemoryError: Task was killed due to the node running low on memory.',
  oomKilled: false,
  restarts: 0,
  kernelOomKills: 0,
  peakBytes: 1900 * MiB,
  hostKeptBytes: 256 * MiB,
  hostHeldBytes: 256 * MiB,
  followUpRan: true,
  followUpSameNode: true,
  followUpSeconds: 0.4,
  agentState: 'contributing',
};
const window = (limit: number, cores: number) => ({
  limit,
  seconds: 20,
  cores,
  periods: 200,
  throttled: 150,
  throttledSeconds: 3,
  wakeP99: 900,
  wakeMax: 4000,
  idleWakeP99: 100,
  idleWakeMax: 400,
});
const data: LimitsData = {
  memory: [memoryTrial, { ...memoryTrial, peakBytes: 1950 * MiB }],
  spill: [
    {
      limitBytes: 2048 * MiB,
      objectStoreBytes: 600 * MiB,
      putBytes: 1200 * MiB,
      putSeconds: 3,
      spilledBytes: 700 * MiB,
      tmpBytes: 20 * MiB,
      intact: 6,
      objects: 6,
      failure: null,
    },
  ],
  cpu: [window(1, 0.99), window(1, 1.0), window(1.5, 1.49), window(1.5, 1.5)],
  scale: [
    {
      tinyTasks: 100_000,
      tinyCompleted: 100_000,
      tinySeconds: 50,
      largeBytes: 1024 * MiB,
      largeOk: true,
      largeSeconds: 4,
      actors: 100,
      actorSeconds: 20,
      onceTasks: 200,
      onceSeconds: 40,
    },
  ],
  wakeTool: 'timer loop',
};

const byId = (figures: ReturnType<typeof suite.figuresOf>) => new Map(figures.map((f) => [f.id, f]));

describe('limits figuresOf', () => {
  test('every figure is valid, with its baseline paired sample for sample', () => {
    const figures = suite.figuresOf(suite.data.parse(data));
    for (const figure of figures) {
      const parsed = Figure.parse(figure);
      if (parsed.baseline) expect(parsed.baseline.samples.length, parsed.id).toBe(parsed.subject.samples.length);
    }
    expect(figures.map((f) => f.id)).toEqual([
      'limits.memory.peak',
      'limits.memory.recovery',
      'limits.memory.spilled',
      'limits.cpu.use-1',
      'limits.cpu.throttled-1',
      'limits.cpu.wake-1',
      'limits.cpu.use-1-5',
      'limits.cpu.throttled-1-5',
      'limits.cpu.wake-1-5',
      'limits.scale.tiny',
      'limits.scale.large',
      'limits.scale.actors',
      'limits.scale.once',
    ]);
  });

  test('CPU use is judged against its own limit, memory peak against the memory limit', () => {
    const figures = byId(suite.figuresOf(data));
    expect(figures.get('limits.cpu.use-1-5')).toMatchObject({
      subject: { samples: [1.49, 1.5] },
      baseline: { samples: [1.5, 1.5] },
      goal: { kind: 'ratio-at-most', value: 1 },
    });
    expect(figures.get('limits.memory.peak')).toMatchObject({
      subject: { samples: [1900, 1950] },
      baseline: { samples: [2048, 2048] },
      goal: { kind: 'ratio-at-most', value: 1 },
    });
    expect(figures.get('limits.scale.tiny')?.subject.samples).toEqual([2000]);
    expect(figures.get('limits.cpu.throttled-1')?.subject.samples).toEqual([75, 75]);
  });

  test('checks fail where the measurement shows harm: the host lost memory, the node stopped contributing, no spill', () => {
    const bad: LimitsData = {
      ...data,
      memory: [{ ...memoryTrial, hostKeptBytes: 100 * MiB, followUpRan: false }],
      spill: [{ ...(data.spill[0] as LimitsData['spill'][number]), spilledBytes: 0, intact: 5 }],
      scale: [{ ...(data.scale[0] as LimitsData['scale'][number]), tinyCompleted: 99_999 }],
    };
    const figures = byId(suite.figuresOf(bad));
    const failed = (id: string) => (figures.get(id)?.checks ?? []).filter((c) => !c.ok).map((c) => c.what);
    expect(failed('limits.memory.peak')).toEqual([
      'the host untouched: a host process kept all of its memory',
      'the node contributing afterwards: a follow-up task ran',
    ]);
    expect(failed('limits.memory.spilled')).toEqual([
      'bytes reached the spill volume',
      'every object read back intact, no worker killed',
    ]);
    const killed = byId(
      suite.figuresOf({
        ...data,
        spill: [{ ...(data.spill[0] as LimitsData['spill'][number]), failure: 'OutOfMemoryError: 1 worker killed' }],
      }),
    );
    expect((killed.get('limits.memory.spilled')?.checks ?? []).filter((c) => !c.ok).map((c) => c.what)).toEqual([
      'every object read back intact, no worker killed',
    ]);
    expect(failed('limits.scale.tiny')).toEqual(['every tiny task completed with its result']);
    expect(failed('limits.cpu.use-1')).toEqual([]);
  });

  test('details are generated from the data', () => {
    const text = suite.details(data);
    expect(text).toContain('| 2048 | 3072 | killed-by-ray');
    expect(text).toContain('| 1.5 | 20.0 | 1.490 | 150 / 200 |');
  });
});
