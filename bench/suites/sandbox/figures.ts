import type { Figure } from '../../lib/figure.js';
import type { SandboxData } from './schema.js';

const SECTION = 'gVisor sandboxes';
const SANDBOX = 'inside a gVisor sandbox (Ray’s sandbox API, rootless runsc)';
const TASK = 'ordinary Ray task, same node, same busybox binary';

/** The sandbox's start and its compute against ordinary work on the same agent node, per repetition. */
export function sandboxFigures(data: SandboxData): Figure[] {
  const perSecond = (count: number, wall: number) => count / Math.max(wall, 0.01);
  return [
    {
      id: 'sandbox.start',
      section: SECTION,
      label: 'Create to the first command answered (image already extracted), s',
      unit: 's',
      subject: {
        label: 'gVisor sandbox: `sandbox.create` + `exec true`',
        samples: data.reps.map((r) => r.start.sandbox),
      },
      baseline: {
        label: 'ordinary actor on the node: create + first call',
        samples: data.reps.map((r) => r.start.actor),
      },
      // A person's sandbox should be ready about as fast as a Ray worker process starts, plus gVisor's boot.
      goal: { kind: 'difference-at-most', value: 2 },
    },
    {
      id: 'sandbox.compute.cpu',
      section: SECTION,
      label: `CPU-bound loop (busybox awk, ${data.loops.toLocaleString('en')} iterations), iterations/s`,
      unit: 'iterations/s',
      subject: { label: SANDBOX, samples: data.reps.map((r) => perSecond(data.loops, r.loop.sandbox.wall)) },
      baseline: { label: TASK, samples: data.reps.map((r) => perSecond(data.loops, r.loop.task.wall)) },
      // User-space compute never leaves the sandbox's stub process: it should run at the node's own speed.
      goal: { kind: 'ratio-at-least', value: 0.95 },
    },
    {
      id: 'sandbox.compute.syscalls',
      section: SECTION,
      label: `System-call-bound copy (busybox dd, ${data.blocks.toLocaleString('en')} blocks of 512 B), blocks/s`,
      unit: 'blocks/s',
      subject: { label: SANDBOX, samples: data.reps.map((r) => perSecond(data.blocks, r.syscalls.sandbox.wall)) },
      baseline: { label: TASK, samples: data.reps.map((r) => perSecond(data.blocks, r.syscalls.task.wall)) },
      // gVisor's ptrace platform (the one that runs without KVM) traps every system call: context, not a goal.
      goal: { kind: 'none' },
    },
    {
      id: 'sandbox.call.round-trip',
      section: SECTION,
      label: 'One call doing nothing, at the driver, s',
      unit: 's',
      subject: { label: 'sandbox `exec true` (runsc exec)', samples: data.reps.map((r) => r.roundTrip.sandbox) },
      baseline: { label: 'ordinary task running `busybox true`', samples: data.reps.map((r) => r.roundTrip.task) },
      goal: { kind: 'none' },
    },
  ];
}
