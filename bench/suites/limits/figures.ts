import type { Figure } from '../../lib/figure.js';
import type { LimitsData } from './schema.js';

const MiB = 1024 ** 2;
const SECTION_MEMORY = 'Limits: memory';
const SECTION_CPU = 'Limits: CPU';
const SECTION_SCALE = 'Limits: scale of work';

/** `1.5` → `1-5`: figure IDs are dotted words. */
const idOf = (limit: number) => String(limit).replace('.', '-');

export function figuresOf(data: LimitsData): Figure[] {
  const figures: Figure[] = [];
  if (data.memory.length > 0) {
    const m = data.memory;
    figures.push({
      id: 'limits.memory.peak',
      section: SECTION_MEMORY,
      label: `Peak memory of the agent container ÷ its limit, a task allocating ${m[0]?.taskMiB} MiB under ${((m[0]?.limitBytes ?? 0) / MiB).toFixed(0)} MiB`,
      unit: 'MiB',
      subject: { label: 'agent container, cgroup peak', samples: m.map((t) => t.peakBytes / MiB) },
      baseline: { label: 'the --memory limit', samples: m.map((t) => t.limitBytes / MiB) },
      goal: { kind: 'ratio-at-most', value: 1 },
      checks: [
        {
          what: 'the host untouched: a host process kept all of its memory',
          ok: m.every((t) => t.hostKeptBytes >= t.hostHeldBytes),
        },
        { what: 'the node contributing afterwards: a follow-up task ran', ok: m.every((t) => t.followUpRan) },
        {
          what: 'the over-allocating task did not complete (the limit held)',
          ok: m.every((t) => t.outcome !== 'completed'),
        },
      ],
    });
    figures.push({
      id: 'limits.memory.recovery',
      section: SECTION_MEMORY,
      label: 'From the failed task to a follow-up task running on the node',
      unit: 's',
      subject: { label: 'agent container', samples: m.map((t) => t.followUpSeconds) },
      baseline: null,
      goal: { kind: 'none' },
      checks: [{ what: 'a follow-up task ran', ok: m.every((t) => t.followUpRan) }],
    });
  }
  if (data.spill.length > 0) {
    const s = data.spill;
    figures.push({
      id: 'limits.memory.spilled',
      section: SECTION_MEMORY,
      label: 'Objects beyond the object store, on the disk-backed spill volume',
      unit: 'MiB',
      subject: { label: 'spill volume', samples: s.map((t) => t.spilledBytes / MiB) },
      baseline: null,
      goal: { kind: 'none' },
      checks: [
        { what: 'more was put than the object store holds', ok: s.every((t) => t.putBytes > t.objectStoreBytes) },
        { what: 'bytes reached the spill volume', ok: s.every((t) => t.spilledBytes > 0) },
        {
          what: 'every object read back intact, no worker killed',
          ok: s.every((t) => t.failure === null && t.intact === t.objects),
        },
      ],
    });
  }
  for (const limit of [...new Set(data.cpu.map((w) => w.limit))]) {
    const w = data.cpu.filter((x) => x.limit === limit);
    figures.push({
      id: `limits.cpu.use-${idOf(limit)}`,
      section: SECTION_CPU,
      label: `CPU used by the agent container under --cpus=${limit}, tasks saturating`,
      unit: 'cores',
      subject: { label: 'agent container, cgroup CPU ÷ wall', samples: w.map((x) => x.cores) },
      baseline: { label: `the --cpus=${limit} limit`, samples: w.map((x) => x.limit) },
      goal: { kind: 'ratio-at-most', value: 1 },
      checks: [
        { what: 'the tasks saturated the limit (the quota throttled them)', ok: w.every((x) => x.throttled > 0) },
      ],
    });
    figures.push({
      id: `limits.cpu.throttled-${idOf(limit)}`,
      section: SECTION_CPU,
      label: `Share of CFS periods throttled under --cpus=${limit}`,
      unit: '%',
      subject: {
        label: 'agent container',
        samples: w.map((x) => (x.periods > 0 ? (100 * x.throttled) / x.periods : 0)),
      },
      baseline: null,
      goal: { kind: 'none' },
    });
    figures.push({
      id: `limits.cpu.wake-${idOf(limit)}`,
      section: SECTION_CPU,
      label: `Host process wake-up latency p99 (${data.wakeTool}), --cpus=${limit} saturated against no load`,
      unit: 'µs',
      subject: { label: 'host, agent saturating', samples: w.map((x) => x.wakeP99) },
      baseline: { label: 'host, no load', samples: w.map((x) => x.idleWakeP99) },
      goal: { kind: 'none' },
    });
  }
  if (data.scale.length > 0) {
    const s = data.scale;
    figures.push({
      id: 'limits.scale.tiny',
      section: SECTION_SCALE,
      label: `${s[0]?.tinyTasks} tiny tasks on one agent node`,
      unit: 'tasks/s',
      subject: { label: 'agent container', samples: s.map((x) => x.tinyCompleted / x.tinySeconds) },
      baseline: null,
      goal: { kind: 'none' },
      checks: [
        { what: 'every tiny task completed with its result', ok: s.every((x) => x.tinyCompleted === x.tinyTasks) },
      ],
    });
    figures.push({
      id: 'limits.scale.large',
      section: SECTION_SCALE,
      label: `One ${((s[0]?.largeBytes ?? 0) / MiB).toFixed(0)} MiB object made on the agent, fetched by the head's driver`,
      unit: 's',
      subject: { label: 'agent container → head', samples: s.filter((x) => x.largeOk).map((x) => x.largeSeconds) },
      baseline: null,
      goal: { kind: 'none' },
      checks: [{ what: 'the object arrived whole', ok: s.every((x) => x.largeOk) }],
    });
    figures.push({
      id: 'limits.scale.actors',
      section: SECTION_SCALE,
      label: 'Worker churn: short-lived actors created, called once and killed, one after another',
      unit: 'actors/s',
      subject: { label: 'agent container', samples: s.map((x) => x.actors / x.actorSeconds) },
      baseline: null,
      goal: { kind: 'none' },
    });
    figures.push({
      id: 'limits.scale.once',
      section: SECTION_SCALE,
      label: 'Worker churn: max_calls=1 tasks (a new worker process each)',
      unit: 'tasks/s',
      subject: { label: 'agent container', samples: s.map((x) => x.onceTasks / x.onceSeconds) },
      baseline: null,
      goal: { kind: 'none' },
    });
  }
  return figures;
}
