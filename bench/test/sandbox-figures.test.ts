import { describe, expect, test } from 'vitest';
import { Figure } from '../lib/figure.js';
import { judge } from '../lib/verdict.js';
import { suite } from '../suites/sandbox/index.js';
import { parseTimed } from '../suites/sandbox/run.js';
import type { SandboxData, SandboxRep } from '../suites/sandbox/schema.js';

const rep = (first: SandboxRep['first'], loopSandbox: number, loopTask: number): SandboxRep => ({
  first,
  start: { sandbox: 2.1, actor: 0.6 },
  loop: { sandbox: { wall: loopSandbox, user: loopSandbox, sys: 0 }, task: { wall: loopTask, user: loopTask, sys: 0 } },
  syscalls: { sandbox: { wall: 2, user: 0.3, sys: 1.5 }, task: { wall: 0.02, user: 0, sys: 0.02 } },
  roundTrip: { sandbox: 0.12, task: 0.004 },
});
const data: SandboxData = {
  loops: 3_000_000,
  blocks: 20_000,
  cpus: 1,
  selfTest: { kernel: '4.4.0', startSeconds: 0.9 },
  reps: [rep('sandbox', 3.1, 3.0), rep('task', 3.05, 3.0), rep('sandbox', 3.12, 3.02), rep('task', 3.08, 3.01)],
};

describe('the sandbox suite', () => {
  test('its data validates, and every figure is well formed', () => {
    expect(suite.data.parse(data)).toEqual(data);
    for (const figure of suite.figuresOf(data)) expect(() => Figure.parse(figure)).not.toThrow();
  });

  test('throughput is work over the wall time busybox measured, subject against baseline per repetition', () => {
    const cpu = suite.figuresOf(data).find((figure) => figure.id === 'sandbox.compute.cpu');
    expect(cpu?.subject.samples[0]).toBeCloseTo(3_000_000 / 3.1);
    expect(cpu?.baseline?.samples[0]).toBeCloseTo(3_000_000 / 3.0);
    // ~2 % slower inside the sandbox, a tight interval: above the 0.95 goal.
    expect(judge(cpu as Figure).verdict).toBe('met');
    const slow = {
      ...data,
      reps: data.reps.map((r) => ({ ...r, loop: { ...r.loop, sandbox: { ...r.loop.sandbox, wall: 6 } } })),
    };
    const halved = suite.figuresOf(slow).find((figure) => figure.id === 'sandbox.compute.cpu');
    expect(judge(halved as Figure).verdict).toBe('missed');
  });

  test("reads busybox time's figures, and refuses output that has none", () => {
    expect(parseTimed('999718\n3.14 2.89 0.01\n')).toEqual({ wall: 3.14, user: 2.89, sys: 0.01 });
    expect(parseTimed('100+0 records in\n100+0 records out\n0.03 0.00 0.03')).toEqual({
      wall: 0.03,
      user: 0,
      sys: 0.03,
    });
    expect(() => parseTimed('sh: time: not found')).toThrow(/busybox time gave no figures/);
  });

  test('the details table has a row per repetition', () => {
    expect(
      suite
        .details(data)
        .split('\n')
        .filter((line) => /^\| \d/.test(line)),
    ).toHaveLength(4);
  });
});
