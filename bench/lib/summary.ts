import type { BoincResult, ImageResult, ManagerResult, NodesResult, PythonResult, Session } from './schema.js';
import { mean, median, quantile, type Summary, summarize } from './stats.js';

/** One row of the figures table: a figure, its baseline measured in the same run, and the goal. */
export interface Figure {
  section: string;
  name: string;
  unit: string;
  subject: Summary;
  baseline?: { name: string; summary: Summary };
  /** subject/baseline per repetition pair (or subject − baseline where `difference`). */
  ratio?: Summary;
  difference?: Summary;
  goal: string;
  met: boolean | null;
}

const MiB = 1024 ** 2;

export const thousands = (n: number) => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** Pairs of (plain, agent) sessions of one mode, by repetition. */
function pairs(sessions: Session[], mode: 'main' | 'busy'): Array<{ plain: Session; agent: Session }> {
  const out: Array<{ plain: Session; agent: Session }> = [];
  const reps = new Set(sessions.filter((s) => s.mode === mode).map((s) => s.rep));
  for (const rep of [...reps].sort((a, b) => a - b)) {
    const plain = sessions.find((s) => s.mode === mode && s.rep === rep && s.kind === 'plain');
    const agent = sessions.find((s) => s.mode === mode && s.rep === rep && s.kind === 'agent');
    if (plain && agent) out.push({ plain, agent });
  }
  return out;
}

function paired(list: Array<{ plain: Session; agent: Session }>, value: (s: Session) => number | undefined) {
  const rows = list
    .map(({ plain, agent }) => ({ plain: value(plain), agent: value(agent) }))
    .filter((r): r is { plain: number; agent: number } => r.plain !== undefined && r.agent !== undefined);
  return {
    plain: rows.map((r) => r.plain),
    agent: rows.map((r) => r.agent),
    ratio: summarize(rows.map((r) => r.agent / r.plain)),
    difference: summarize(rows.map((r) => r.agent - r.plain)),
  };
}

/** Throughput of a repetition: the mean of its batches. */
export const throughput = (s: Session, kind: 'cpu' | 'tiny') =>
  s.compute ? mean(s.compute[kind].map((b) => b.perSecond)) : undefined;

export function throughputSeries(nodes: NodesResult) {
  const list = pairs(nodes.data.sessions, 'main');
  return {
    reps: list.map((_, i) => i + 1),
    cpu: {
      plain: list.map((p) => throughput(p.plain, 'cpu') ?? 0),
      agent: list.map((p) => throughput(p.agent, 'cpu') ?? 0),
    },
    tiny: {
      plain: list.map((p) => throughput(p.plain, 'tiny') ?? 0),
      agent: list.map((p) => throughput(p.agent, 'tiny') ?? 0),
    },
  };
}

export function nodeFigures(nodes: NodesResult, python?: PythonResult): Figure[] {
  const sessions = nodes.data.sessions;
  const main = pairs(sessions, 'main');
  const busy = pairs(sessions, 'busy');
  const figures: Figure[] = [];

  for (const [kind, label] of [
    ['cpu', 'CPU-bound tasks (pure-Python loop)'],
    ['tiny', 'Tiny tasks (return their argument)'],
  ] as const) {
    const p = paired(main, (s) => throughput(s, kind));
    figures.push({
      section: '1. Compute delivered',
      name: `${label}, tasks/s`,
      unit: 'tasks/s',
      subject: summarize(p.agent),
      baseline: { name: 'plain `ray start` node', summary: summarize(p.plain) },
      ratio: p.ratio,
      goal: 'ratio ≥ 0.98',
      met: p.ratio.median >= 0.98,
    });
  }

  // The CPU-bound ratio with the interpreters' difference taken out: the share of the machine's CPU the node's
  // tasks got. Per pair from the tasks' own CPU time where recorded, else from the interpreter suite.
  const cpuPerTask = (s: Session) => {
    const batches = s.compute?.cpu.filter((b) => b.cpuPerTask !== undefined) ?? [];
    return batches.length ? mean(batches.map((b) => b.cpuPerTask ?? 0)) : undefined;
  };
  const interpreter = python ? median(python.data.reps.map((r) => r.image / r.host)) : undefined;
  const shares = main
    .map(({ plain, agent }) => {
      const a = throughput(agent, 'cpu');
      const p = throughput(plain, 'cpu');
      const ac = cpuPerTask(agent);
      const pc = cpuPerTask(plain);
      if (a === undefined || p === undefined) return undefined;
      if (ac !== undefined && pc !== undefined) return (a * ac) / (p * pc);
      return interpreter !== undefined ? (a / p) * interpreter : undefined;
    })
    .filter((v): v is number => v !== undefined);
  if (shares.length) {
    figures.push({
      section: '1. Compute delivered',
      name: 'CPU-bound tasks, CPU time delivered to tasks (throughput × CPU s per task: the ratio without the two Pythons’ speed difference)',
      unit: '',
      subject: summarize(shares),
      baseline: { name: 'plain node = 1', summary: summarize(shares.map(() => 1)) },
      ratio: summarize(shares),
      goal: 'ratio ≥ 0.98',
      met: median(shares) >= 0.98,
    });
  }

  const all = pairs(sessions, 'main').concat(busy);
  const join = paired(all, (s) => s.join.contributingSeconds);
  figures.push({
    section: '2. Time to contributing',
    name: 'Start to alive in the cluster and registered, s',
    unit: 's',
    subject: summarize(join.agent),
    baseline: { name: 'plain `ray start --address` join', summary: summarize(join.plain) },
    ratio: join.ratio,
    difference: join.difference,
    goal: 'within 1 s of the plain join',
    met: join.difference.median <= 1,
  });

  const idleStop = paired(main, (s) => s.stop.allGoneSeconds);
  figures.push({
    section: '3. Stop',
    name: 'SIGTERM to exit, idle, s',
    unit: 's',
    subject: summarize(idleStop.agent),
    baseline: { name: 'plain node, SIGTERM to `ray start`', summary: summarize(idleStop.plain) },
    ratio: idleStop.ratio,
    goal: '< 2 s',
    met: idleStop.agent.length ? median(idleStop.agent) < 2 : null,
  });
  if (busy.length) {
    const busyStop = paired(busy, (s) => s.stop.allGoneSeconds);
    const deadline = busy[0]?.agent.stop.drainDeadlineSeconds ?? 0;
    const allDone = busy.every(
      ({ agent }) => agent.stop.busy?.failed === 0 && agent.stop.busy.completed === agent.stop.busy.tasks,
    );
    const task = busy[0]?.agent.stop.busy;
    figures.push({
      section: '3. Stop',
      name: `SIGTERM to exit, ${task?.tasks ?? 2} tasks of ${task?.taskSeconds ?? '?'} s running (signal ${task?.signalledAfterStartSeconds.toFixed(0) ?? '?'} s in), s`,
      unit: 's',
      subject: summarize(busyStop.agent),
      baseline: { name: 'plain node, same tasks', summary: summarize(busyStop.plain) },
      ratio: busyStop.ratio,
      goal: `within the drain deadline (${deadline} s), tasks finish`,
      met: Math.max(...busyStop.agent) <= deadline && allDone,
    });
  }

  const idle = (s: Session) => s.footprint?.idle;
  const agentIdle = main.map((p) => idle(p.agent)?.agent).filter((a) => a !== undefined);
  figures.push({
    section: '4. Footprint while idle',
    name: 'Agent process resident memory (RSS), MiB',
    unit: 'MiB',
    subject: summarize(agentIdle.map((a) => a.rssBytes / MiB)),
    goal: '< 40 MiB',
    met: agentIdle.length ? median(agentIdle.map((a) => a.rssBytes / MiB)) < 40 : null,
  });
  figures.push({
    section: '4. Footprint while idle',
    name: 'Agent process CPU, % of one core',
    unit: '%',
    subject: summarize(agentIdle.map((a) => (a.cpuSecondsPerMinute / 60) * 100)),
    goal: '< 0.2 %',
    met: agentIdle.length ? median(agentIdle.map((a) => (a.cpuSecondsPerMinute / 60) * 100)) < 0.2 : null,
  });
  const memory = paired(main, (s) => (idle(s) ? (idle(s)?.cgroupAnonShmemBytes ?? 0) / MiB : undefined));
  figures.push({
    section: '4. Footprint while idle',
    name: 'Whole node memory: cgroup anonymous + shared, MiB',
    unit: 'MiB',
    subject: summarize(memory.agent),
    baseline: { name: 'plain node (its own cgroup)', summary: summarize(memory.plain) },
    ratio: memory.ratio,
    goal: 'ratio ≤ 1.10',
    met: memory.ratio.median <= 1.1,
  });
  const docker = paired(main, (s) => (idle(s) ? (idle(s)?.cgroupDockerStatsBytes ?? 0) / MiB : undefined));
  figures.push({
    section: '4. Footprint while idle',
    name: 'Whole node memory as `docker stats` counts it (usage − inactive files), MiB',
    unit: 'MiB',
    subject: summarize(docker.agent),
    baseline: { name: 'plain node (its own cgroup)', summary: summarize(docker.plain) },
    ratio: docker.ratio,
    goal: 'ratio ≤ 1.10',
    met: docker.ratio.median <= 1.1,
  });
  const cpu = paired(main, (s) => idle(s)?.cgroupCpuSecondsPerMinute);
  figures.push({
    section: '4. Footprint while idle',
    name: 'Whole node CPU while idle, CPU s per minute',
    unit: 'CPU s/min',
    subject: summarize(cpu.agent),
    baseline: { name: 'plain node', summary: summarize(cpu.plain) },
    ratio: cpu.ratio,
    goal: '(no goal)',
    met: null,
  });

  // 7. Status endpoint.
  const agents = main.map((p) => p.agent);
  const pollP99 = agents
    .map((s) => s.footprint?.polled?.pollLatencyMs)
    .filter((l): l is number[] => l !== undefined && l.length > 0)
    .map((l) => quantile(l, 0.99));
  if (pollP99.length) {
    figures.push({
      section: '7. Status endpoint',
      name: 'GET /status p99 latency under the tray’s polling (one request every 2 s), per repetition, ms',
      unit: 'ms',
      subject: summarize(pollP99),
      goal: '(no goal)',
      met: null,
    });
  }
  const bursts = agents.filter((s) => s.burst);
  if (bursts.length) {
    const status = bursts.map((s) => s.burst?.status.latencyMs.p99 ?? 0);
    const healthz = bursts.map((s) => s.burst?.healthz.latencyMs.p99 ?? 0);
    const rate = bursts.map((s) => s.burst?.status.perSecond ?? 0);
    figures.push({
      section: '7. Status endpoint',
      name: `GET /status p99 during a ${Math.round(median(rate))} req/s burst, ms`,
      unit: 'ms',
      subject: summarize(status),
      baseline: { name: 'GET /healthz, same burst', summary: summarize(healthz) },
      ratio: summarize(status.map((v, i) => v / (healthz[i] ?? 1))),
      goal: '(no goal)',
      met: null,
    });
  }
  const pollCost = agents
    .map((s) => s.footprint)
    .filter((f) => f?.polled?.agent && f.idle.agent)
    .map(
      (f) => (((f?.polled?.agent?.cpuSecondsPerMinute ?? 0) - (f?.idle.agent?.cpuSecondsPerMinute ?? 0)) / 60) * 100,
    );
  if (pollCost.length) {
    const polled = agents.map((s) => ((s.footprint?.polled?.agent?.cpuSecondsPerMinute ?? 0) / 60) * 100);
    const unpolled = agents.map((s) => ((s.footprint?.idle.agent?.cpuSecondsPerMinute ?? 0) / 60) * 100);
    figures.push({
      section: '7. Status endpoint',
      name: 'Agent CPU when polled every 2 s, % of one core',
      unit: '%',
      subject: summarize(polled),
      baseline: { name: 'same agent, not polled', summary: summarize(unpolled) },
      difference: summarize(pollCost),
      goal: '(no goal)',
      met: null,
    });
  }
  return figures;
}

export function pythonFigures(python: PythonResult): Figure[] {
  const image = python.data.reps.map((r) => r.image);
  const host = python.data.reps.map((r) => r.host);
  return [
    {
      section: '1. Compute delivered',
      name: `Interpreter alone: the CPU task's loop (${thousands(python.data.loops)} iterations) outside Ray, CPU s — image's Python ${python.data.versions.image}`,
      unit: 's',
      subject: summarize(image),
      baseline: {
        name: `host venv's Python ${python.data.versions.host} (the plain node's)`,
        summary: summarize(host),
      },
      ratio: summarize(image.map((v, i) => v / (host[i] ?? 1))),
      goal: '(context: below 1 means the image’s Python is faster)',
      met: null,
    },
  ];
}

export function boincFigures(boinc: BoincResult): Figure[] {
  if (boinc.data.skipped || !boinc.data.reps.length) return [];
  return [
    {
      section: '4. Footprint while idle',
      name: 'Reference: Debian `boinc-client` idle, RSS, MiB',
      unit: 'MiB',
      subject: summarize(boinc.data.reps.map((r) => r.rssBytes / MiB)),
      goal: '(reference)',
      met: null,
    },
    {
      section: '4. Footprint while idle',
      name: 'Reference: Debian `boinc-client` idle, CPU, % of one core',
      unit: '%',
      subject: summarize(boinc.data.reps.map((r) => (r.cpuSecondsPerMinute / 60) * 100)),
      goal: '(reference)',
      met: null,
    },
  ];
}

export function imageFigures(image: ImageResult): Figure[] {
  const mb = image.data.sizeBytes / 1e6;
  return [
    {
      section: '5. Image size',
      name: `${image.data.image} uncompressed, MB`,
      unit: 'MB',
      subject: summarize([mb]),
      goal: '< 450 MB',
      met: mb < 450,
    },
  ];
}

export function managerFigures(manager: ManagerResult): Figure[] {
  const figures: Figure[] = [];
  for (const capacity of manager.data) {
    const runs = (endpoint: string, mode: string) =>
      capacity.reps.map((r) => r.runs.find((run) => run.endpoint === endpoint && run.mode === mode));
    const hb = runs('heartbeat', 'closed');
    const hz = runs('healthz', 'closed');
    const rate = hb.map((r) => r?.perSecond ?? 0);
    const base = hz.map((r) => r?.perSecond ?? 0);
    const p99 = hb.map((r) => r?.latencyMs.p99 ?? 0);
    figures.push({
      section: '6. Manager capacity',
      name: `Heartbeats/s sustained, ${thousands(capacity.providers)} providers (closed loop, ${hb[0]?.connections ?? '?'} connections)`,
      unit: 'req/s',
      subject: summarize(rate),
      baseline: { name: 'GET /healthz, same server and generator', summary: summarize(base) },
      ratio: summarize(rate.map((v, i) => v / (base[i] ?? 1))),
      goal: '≥ 5,000/s',
      met: median(rate) >= 5000,
    });
    figures.push({
      section: '6. Manager capacity',
      name: `  p99 latency at that load, ${thousands(capacity.providers)} providers, ms`,
      unit: 'ms',
      subject: summarize(p99),
      baseline: { name: 'GET /healthz p99', summary: summarize(hz.map((r) => r?.latencyMs.p99 ?? 0)) },
      goal: '< 20 ms',
      met: median(p99) < 20,
    });
    const open = runs('heartbeat', 'open');
    const openBase = runs('healthz', 'open');
    const target = open[0]?.rate ?? 0;
    figures.push({
      section: '6. Manager capacity',
      name: `  heartbeats offered at ${thousands(target)}/s (open loop): answered/s, ${thousands(capacity.providers)} providers`,
      unit: 'req/s',
      subject: summarize(open.map((r) => r?.perSecond ?? 0)),
      baseline: {
        name: 'GET /healthz offered at the same rate',
        summary: summarize(openBase.map((r) => r?.perSecond ?? 0)),
      },
      goal: `≥ ${thousands(target)}/s`,
      met: median(open.map((r) => r?.perSecond ?? 0)) >= target * 0.99,
    });
    figures.push({
      section: '6. Manager capacity',
      name: `  p99 latency at ${thousands(target)}/s offered, ms`,
      unit: 'ms',
      subject: summarize(open.map((r) => r?.latencyMs.p99 ?? 0)),
      baseline: { name: 'GET /healthz p99', summary: summarize(openBase.map((r) => r?.latencyMs.p99 ?? 0)) },
      goal: '< 20 ms',
      met: median(open.map((r) => r?.latencyMs.p99 ?? 0)) < 20,
    });
    const perRequest = hb.map((r) => (r ? (r.managerCpuSeconds / Math.max(1, r.answered)) * 1000 : 0));
    const perHealthz = hz.map((r) => (r ? (r.managerCpuSeconds / Math.max(1, r.answered)) * 1000 : 0));
    figures.push({
      section: '6. Manager capacity',
      name: `  manager CPU per request, ${thousands(capacity.providers)} providers, ms (one core’s ceiling = 1000 / this)`,
      unit: 'ms',
      subject: summarize(perRequest),
      baseline: { name: 'GET /healthz', summary: summarize(perHealthz) },
      ratio: summarize(perRequest.map((v, i) => v / (perHealthz[i] ?? 1))),
      goal: '≤ 0.2 ms (5,000/s on one core)',
      met: median(perRequest) <= 0.2,
    });
  }
  return figures;
}
