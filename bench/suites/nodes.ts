import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import type { BenchCluster, WorkerNode } from '../lib/cluster.js';
import { runLoadgen } from '../lib/loadgen.js';
import { processCpuSeconds, processMemory, processTitle } from '../lib/procfs.js';
import type { Settings } from '../lib/settings.js';
import { median } from '../lib/stats.js';
import { log, run, sleep, waitFor } from '../lib/util.js';

const STATUS_ORIGIN = 'http://127.0.0.1:8765';

export interface Footprint {
  seconds: number;
  /** Medians of samples taken through the window. */
  cgroupAnonShmemBytes: number;
  cgroupDockerStatsBytes: number;
  processRssSumBytes: number;
  processPssSumBytes: number;
  processes: number;
  cgroupCpuSecondsPerMinute: number;
  agent?: { rssBytes: number; rssAnonBytes: number; pssBytes: number; cpuSecondsPerMinute: number };
}

export interface Session {
  kind: 'agent' | 'plain';
  rep: number;
  mode: 'main' | 'busy';
  /** Position within its pair (0 first, 1 second): pairs alternate who goes first. */
  position: number;
  join: { aliveSeconds: number; registeredSeconds: number | null; contributingSeconds: number };
  footprint?: { idle: Footprint; polled?: Footprint & { pollLatencyMs: number[] } };
  burst?: { status: unknown; healthz: unknown };
  compute?: {
    cpu: Batch[];
    tiny: Batch[];
    throttling: { periods: number; throttled: number; throttledSeconds: number };
  };
  /** The agent's own log lines: seconds after `docker run` began, and the message. */
  agentLog?: Array<[number, string]>;
  stop: {
    mode: 'idle' | 'busy';
    drainDeadlineSeconds: number;
    mainExitSeconds: number;
    allGoneSeconds: number;
    busy?: {
      tasks: number;
      taskSeconds: number;
      signalledAfterStartSeconds: number;
      completed: number;
      failed: number;
      errors: string[];
    };
  };
}

export interface Batch {
  tasks: number;
  elapsed: number;
  perSecond: number;
  /** Sum of the tasks' CPU seconds over the sum of their wall seconds, inside the worker. */
  cpuOverWall?: number;
  /** Mean CPU seconds one task took inside its worker: the interpreter's speed, whatever the contention. */
  cpuPerTask?: number;
}

function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

/** Measures one window of idle time: memory sampled through it, CPU as a delta over it. */
async function footprintWindow(
  node: WorkerNode,
  seconds: number,
  during?: (stopAt: number) => Promise<void>,
): Promise<Footprint> {
  const samples = {
    anon: [] as number[],
    docker: [] as number[],
    rss: [] as number[],
    pss: [] as number[],
    procs: [] as number[],
  };
  const agentSamples = { rss: [] as number[], anon: [] as number[], pss: [] as number[] };
  const sample = () => {
    const figures = node.cgroup.figures();
    if (!figures) return;
    const sums = node.cgroup.processSums();
    samples.anon.push(figures.anonShmem);
    samples.docker.push(figures.dockerStats);
    samples.rss.push(sums.rss);
    samples.pss.push(sums.pss);
    samples.procs.push(sums.processes);
    if (node.agentPid) {
      const memory = processMemory(node.agentPid);
      if (memory) {
        agentSamples.rss.push(memory.rss);
        agentSamples.anon.push(memory.rssAnon);
        agentSamples.pss.push(memory.pss);
      }
    }
  };
  const cpu0 = node.cgroup.figures()?.cpuSeconds ?? Number.NaN;
  const agentCpu0 = node.agentPid ? processCpuSeconds(node.agentPid) : undefined;
  const t0 = performance.now();
  const stopAt = t0 + seconds * 1000;
  const background = during?.(stopAt);
  const every = (seconds * 1000) / 6;
  for (let at = t0 + every / 2; at < stopAt; at += every) {
    await sleep(Math.max(0, at - performance.now()));
    sample();
  }
  await sleep(Math.max(0, stopAt - performance.now()));
  await background;
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = node.cgroup.figures()?.cpuSeconds ?? Number.NaN;
  const agentCpu1 = node.agentPid ? processCpuSeconds(node.agentPid) : undefined;
  const footprint: Footprint = {
    seconds: elapsed,
    cgroupAnonShmemBytes: median(samples.anon),
    cgroupDockerStatsBytes: median(samples.docker),
    processRssSumBytes: median(samples.rss),
    processPssSumBytes: median(samples.pss),
    processes: median(samples.procs),
    cgroupCpuSecondsPerMinute: ((cpu1 - cpu0) / elapsed) * 60,
  };
  if (node.agentPid && agentCpu0 !== undefined && agentCpu1 !== undefined)
    footprint.agent = {
      rssBytes: median(agentSamples.rss),
      rssAnonBytes: median(agentSamples.anon),
      pssBytes: median(agentSamples.pss),
      cpuSecondsPerMinute: ((agentCpu1 - agentCpu0) / elapsed) * 60,
    };
  return footprint;
}

/** The tray app's polling: one GET /status every `every` seconds, on one kept-alive connection. */
function poller(everySeconds: number, latencies: number[]) {
  return async (stopAt: number) => {
    const pool = new Pool(STATUS_ORIGIN, { connections: 1 });
    try {
      for (let at = performance.now(); at < stopAt; at += everySeconds * 1000) {
        await sleep(Math.max(0, at - performance.now()));
        const sent = performance.now();
        const response = await pool.request({ method: 'GET', path: '/status' });
        await response.body.text();
        if (response.statusCode !== 200) throw new Error(`GET /status: ${response.statusCode}`);
        latencies.push(performance.now() - sent);
      }
    } finally {
      await pool.close();
    }
  };
}

async function measureStop(
  cluster: BenchCluster,
  node: WorkerNode,
): Promise<{ mainExitSeconds: number; allGoneSeconds: number }> {
  const t0 = performance.now();
  cluster.signal(node, 'SIGTERM');
  let mainExit: number | undefined;
  const limit = (node.drainDeadlineSeconds + 60) * 1000;
  while (performance.now() - t0 < limit) {
    if (mainExit === undefined && processGone(node.mainPid)) mainExit = (performance.now() - t0) / 1000;
    if (mainExit !== undefined && node.cgroup.pids().every(processGone)) {
      return { mainExitSeconds: mainExit, allGoneSeconds: (performance.now() - t0) / 1000 };
    }
    await sleep(20);
  }
  throw new Error(`${node.name} did not stop within ${limit / 1000} s of SIGTERM`);
}

function batch(answer: Record<string, unknown>): Batch {
  const wall = (answer.taskWall as number[] | undefined) ?? [];
  const cpu = (answer.taskCpu as number[] | undefined) ?? [];
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  return {
    tasks: answer.tasks as number,
    elapsed: answer.elapsed as number,
    perSecond: answer.perSecond as number,
    ...(wall.length ? { cpuOverWall: sum(cpu) / sum(wall), cpuPerTask: sum(cpu) / cpu.length } : {}),
  };
}

/** The agent's JSON log as a timeline: where its start-up and stop time goes. */
async function agentLog(node: WorkerNode): Promise<Array<[number, string]>> {
  const logs = await run('docker', ['logs', node.name]);
  const lines: Array<[number, string]> = [];
  for (const line of `${logs.stdout}\n${logs.stderr}`.split('\n')) {
    try {
      const entry = JSON.parse(line) as { time?: string; msg?: string };
      if (entry.time && entry.msg)
        lines.push([Math.round(Date.parse(entry.time) - node.startedAt) / 1000, entry.msg.slice(0, 120)]);
    } catch {
      // not a log line of the agent's
    }
  }
  return lines.sort((a, b) => a[0] - b[0]).slice(0, 60);
}

/**
 * The agent's own start-up steps timed alone, in the same image (on the head's container): what `import ray`
 * costs (the agent reads its Ray version that way) and what its pre-join cluster check (cluster_info.py) costs;
 * and what a bare Node.js process holds in this image, the floor under the agent's own memory.
 */
export interface Probes {
  importRaySeconds: number[];
  preflightSeconds: number[];
  bareNode: { rssBytes: number; rssAnonBytes: number };
}

async function probes(cluster: BenchCluster, reps: number): Promise<Probes> {
  const importRaySeconds: number[] = [];
  const preflightSeconds: number[] = [];
  const timed = (code: string) =>
    run('docker', ['exec', cluster.head, 'python3', '-c', code]).then((r) => Number(r.stderr.trim().split('\n').pop()));
  for (let i = 0; i < reps; i++) {
    importRaySeconds.push(
      await timed(
        'import sys, time\nt = time.perf_counter()\nimport platform, ray\nprint(time.perf_counter() - t, file=sys.stderr)',
      ),
    );
    preflightSeconds.push(
      await timed(
        "import runpy, sys, time\nt = time.perf_counter()\nsys.argv = ['cluster_info.py', '127.0.0.1:6379', '5']\nrunpy.run_path('/opt/ray-agent/cluster_info.py', run_name='__main__')\nprint(time.perf_counter() - t, file=sys.stderr)",
      ),
    );
  }
  const bare = await run('docker', [
    'run',
    '--rm',
    '--network=none',
    '--entrypoint',
    'node',
    cluster.imageId,
    '-e',
    "setTimeout(() => { const s = require('fs').readFileSync('/proc/self/status', 'utf8'); console.log(/VmRSS:\\s+(\\d+)/.exec(s)[1], /RssAnon:\\s+(\\d+)/.exec(s)[1]); }, 1000)",
  ]);
  const [rss, anon] = bare.stdout
    .trim()
    .split(' ')
    .map((kib) => Number(kib) * 1024);
  log(
    `probes: import ray ${importRaySeconds.map((s) => s.toFixed(2)).join(', ')} s; cluster check ${preflightSeconds.map((s) => s.toFixed(2)).join(', ')} s; bare node RSS ${((rss ?? 0) / 2 ** 20).toFixed(1)} MiB`,
  );
  return { importRaySeconds, preflightSeconds, bareNode: { rssBytes: rss ?? 0, rssAnonBytes: anon ?? 0 } };
}

export async function nodesSuite(
  cluster: BenchCluster,
  settings: Settings['nodes'],
): Promise<{ sessions: Session[]; probes: Probes }> {
  const sessions: Session[] = [];
  const seen = new Set<string>();
  const driver = cluster.driver;
  const measured = await probes(cluster, 3);

  const session = async (kind: 'agent' | 'plain', rep: number, position: number, mode: 'main' | 'busy') => {
    const drainDeadlineSeconds =
      mode === 'busy' ? settings.busyStop.drainDeadlineSeconds : settings.drainDeadlineSeconds;
    log(`${mode === 'main' ? 'rep' : 'busy-stop rep'} ${rep + 1}: ${kind} node`);
    const providersBefore = kind === 'agent' ? new Set(await cluster.providerIds()) : undefined;
    const node =
      kind === 'agent'
        ? await cluster.startAgent({ drainDeadlineSeconds })
        : await cluster.startPlain({ drainDeadlineSeconds });
    try {
      // Joined: the driver sees a new alive node with CPUs. Registered: the manager lists a new provider.
      const [alive, registeredAt] = await Promise.all([
        driver.send({ cmd: 'wait_node', exclude: [...seen], timeout: 240 }),
        providersBefore
          ? waitFor(
              'the agent to register',
              async () =>
                (await cluster.providerIds()).some((id) => !providersBefore.has(id)) ? Date.now() : undefined,
              240_000,
            )
          : Promise.resolve(null),
      ]);
      const nodeId = alive.nodeId as string;
      seen.add(nodeId);
      const aliveSeconds = ((alive.seenAt as number) * 1000 - node.startedAt) / 1000;
      const registeredSeconds = registeredAt === null ? null : (registeredAt - node.startedAt) / 1000;
      const result: Session = {
        kind,
        rep,
        mode,
        position,
        join: { aliveSeconds, registeredSeconds, contributingSeconds: Math.max(aliveSeconds, registeredSeconds ?? 0) },
        stop: { mode: mode === 'main' ? 'idle' : 'busy', drainDeadlineSeconds, mainExitSeconds: 0, allGoneSeconds: 0 },
      };
      log(`  joined in ${result.join.contributingSeconds.toFixed(2)} s`);
      if (kind === 'agent') node.agentPid = await cluster.agentPid(node);

      if (mode === 'main') {
        await sleep(settings.settleSeconds * 1000);
        // Idle footprint; the agent also gets a window of the tray's polling, the two in alternating order.
        if (kind === 'agent') {
          const pollLatencyMs: number[] = [];
          const windows = rep % 2 === 0 ? ['idle', 'polled'] : ['polled', 'idle'];
          const footprint: Partial<NonNullable<Session['footprint']>> = {};
          for (const window of windows) {
            if (window === 'idle') footprint.idle = await footprintWindow(node, settings.idleSeconds);
            else
              footprint.polled = {
                ...(await footprintWindow(
                  node,
                  settings.idleSeconds,
                  poller(settings.pollEverySeconds, pollLatencyMs),
                )),
                pollLatencyMs,
              };
          }
          result.footprint = footprint as NonNullable<Session['footprint']>;
          // A burst on /status, and on /healthz (no document to build) as its baseline, in alternating order.
          const burst = async (path: string) =>
            runLoadgen({
              origin: STATUS_ORIGIN,
              connections: 8,
              mode: 'open',
              rate: settings.burstRate,
              durationS: settings.burstSeconds,
              warmupS: 0.2,
              method: 'GET',
              path,
            });
          const first = rep % 2 === 0 ? '/status' : '/healthz';
          const a = await burst(first);
          const b = await burst(first === '/status' ? '/healthz' : '/status');
          result.burst = first === '/status' ? { status: a, healthz: b } : { status: b, healthz: a };
        } else {
          result.footprint = { idle: await footprintWindow(node, settings.idleSeconds) };
        }

        // Compute: one warm-up (workers start, the functions get exported), then CPU-bound and tiny batches.
        await driver.send({ cmd: 'cpu', nodeId, tasks: 2, loops: Math.round(settings.cpu.loops / 10) });
        await driver.send({ cmd: 'tiny', nodeId, tasks: 50 });
        const throttled0 = node.cgroup.throttling();
        const compute = { cpu: [] as Batch[], tiny: [] as Batch[], throttling: throttled0 };
        for (let i = 0; i < Math.max(settings.cpu.batches, settings.tiny.batches); i++) {
          if (i < settings.cpu.batches)
            compute.cpu.push(
              batch(await driver.send({ cmd: 'cpu', nodeId, tasks: settings.cpu.tasks, loops: settings.cpu.loops })),
            );
          if (i < settings.tiny.batches)
            compute.tiny.push(batch(await driver.send({ cmd: 'tiny', nodeId, tasks: settings.tiny.tasks })));
        }
        const throttled1 = node.cgroup.throttling();
        compute.throttling = {
          periods: throttled1.periods - throttled0.periods,
          throttled: throttled1.throttled - throttled0.throttled,
          throttledSeconds: throttled1.throttledSeconds - throttled0.throttledSeconds,
        };
        result.compute = compute;
        log(
          `  cpu ${compute.cpu.map((b) => b.perSecond.toFixed(2)).join(', ')} tasks/s; tiny ${compute.tiny.map((b) => b.perSecond.toFixed(0)).join(', ')} tasks/s`,
        );
        await sleep(1000);
        Object.assign(result.stop, await measureStop(cluster, node));
      } else {
        const { tasks, taskSeconds } = { tasks: 2, taskSeconds: settings.busyStop.taskSeconds };
        await driver.send({ cmd: 'submit_busy', nodeId, tasks, seconds: taskSeconds });
        // Signal once both tasks really run: their workers are titled ray::busy_task.
        const runningAt = await waitFor(
          'the busy tasks to start',
          () =>
            node.cgroup.pids().filter((pid) => processTitle(pid).startsWith('ray::busy_task')).length >= tasks
              ? performance.now()
              : undefined,
          120_000,
          50,
        );
        await sleep(1000);
        const signalledAfterStartSeconds = (performance.now() - runningAt) / 1000;
        Object.assign(result.stop, await measureStop(cluster, node));
        const collected = await driver.send({ cmd: 'collect_busy', timeout: 30 });
        result.stop.busy = {
          tasks,
          taskSeconds,
          signalledAfterStartSeconds,
          completed: collected.completed as number,
          failed: collected.failed as number,
          errors: collected.errors as string[],
        };
      }
      log(`  stopped (${result.stop.mode}) in ${result.stop.allGoneSeconds.toFixed(2)} s`);
      await driver.send({ cmd: 'wait_gone', nodeId, timeout: 60 }).catch(() => undefined);
      if (kind === 'agent') result.agentLog = await agentLog(node);
      sessions.push(result);
    } finally {
      await cluster.removeNode(node);
    }
  };

  for (let rep = 0; rep < settings.reps; rep++) {
    const order: Array<'plain' | 'agent'> = rep % 2 === 0 ? ['plain', 'agent'] : ['agent', 'plain'];
    for (const [position, kind] of order.entries()) await session(kind, rep, position, 'main');
  }
  for (let rep = 0; rep < settings.busyStop.reps; rep++) {
    const order: Array<'plain' | 'agent'> = rep % 2 === 0 ? ['agent', 'plain'] : ['plain', 'agent'];
    for (const [position, kind] of order.entries()) await session(kind, rep, position, 'busy');
  }
  return { sessions, probes: measured };
}
