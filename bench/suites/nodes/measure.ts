import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { Pool, request } from 'undici';
import type { WorkerNode } from '../../lib/cluster.js';
import { children, processCpuSeconds, processMemory, processTitle } from '../../lib/procfs.js';
import { median } from '../../lib/stats.js';
import { run, sleep } from '../../lib/util.js';
import { STATUS_PORT } from './containers.js';
import type { Footprint, StatusLoad } from './schema.js';

export const STATUS_ORIGIN = `http://127.0.0.1:${STATUS_PORT}`;
export const STATUS_METRIC = 'ray_agent_status_request_duration_seconds';

/** A small seeded generator (mulberry32): the run's random orders are recorded by their seed and can be replayed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

const cpuOf = (node: WorkerNode) => node.cgroup.figures()?.cpuSeconds ?? Number.NaN;

/**
 * Waits until each node's CPU use over 2 s windows stops falling (the next window is not 10 % below the last, or is
 * under 0.5 % of a core), so idle windows do not catch the tail of start-up.
 */
export async function settle(nodes: WorkerNode[], maxSeconds: number) {
  const t0 = performance.now();
  const last = new Map<WorkerNode, number>();
  const done = new Map<WorkerNode, { seconds: number; cpuPercent: number; settled: boolean }>();
  while (done.size < nodes.length) {
    const before = nodes.map(cpuOf);
    const w0 = performance.now();
    await sleep(2000);
    const seconds = (performance.now() - w0) / 1000;
    const elapsed = (performance.now() - t0) / 1000;
    nodes.forEach((node, i) => {
      if (done.has(node)) return;
      const percent = ((cpuOf(node) - (before[i] ?? 0)) / seconds) * 100;
      const previous = last.get(node);
      const settled = percent < 0.5 || (previous !== undefined && percent >= previous * 0.9);
      if (settled || elapsed >= maxSeconds) done.set(node, { seconds: elapsed, cpuPercent: percent, settled });
      last.set(node, percent);
    });
  }
  return nodes.map((node) => done.get(node) as { seconds: number; cpuPercent: number; settled: boolean });
}

/** One idle window over several nodes at once: memory sampled through it, CPU as a delta over it. */
export async function footprintWindow(
  nodes: WorkerNode[],
  seconds: number,
  during?: (stopAt: number) => Promise<void>,
): Promise<Footprint[]> {
  const samples = nodes.map(() => ({
    docker: [] as number[],
    anon: [] as number[],
    rss: [] as number[],
    pss: [] as number[],
    procs: [] as number[],
    agentRss: [] as number[],
    agentAnon: [] as number[],
    agentPss: [] as number[],
  }));
  const sample = () =>
    nodes.forEach((node, i) => {
      const s = samples[i];
      const figures = node.cgroup.figures();
      if (!s || !figures) return;
      const sums = node.cgroup.processSums();
      s.docker.push(figures.dockerStats);
      s.anon.push(figures.anonShmem);
      s.rss.push(sums.rss);
      s.pss.push(sums.pss);
      s.procs.push(sums.processes);
      const memory = node.agentPid ? processMemory(node.agentPid) : undefined;
      if (memory) {
        s.agentRss.push(memory.rss);
        s.agentAnon.push(memory.rssAnon);
        s.agentPss.push(memory.pss);
      }
    });
  const cpu0 = nodes.map(cpuOf);
  const agent0 = nodes.map((node) => (node.agentPid ? processCpuSeconds(node.agentPid) : undefined));
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
  return nodes.map((node, i) => {
    const s = samples[i] as (typeof samples)[number];
    const footprint: Footprint = {
      seconds: elapsed,
      cgroupDockerStatsBytes: median(s.docker),
      cgroupAnonShmemBytes: median(s.anon),
      processRssSumBytes: median(s.rss),
      processPssSumBytes: median(s.pss),
      processes: median(s.procs),
      cgroupCpuPercent: ((cpuOf(node) - (cpu0[i] ?? 0)) / elapsed) * 100,
    };
    const a0 = agent0[i];
    const a1 = node.agentPid ? processCpuSeconds(node.agentPid) : undefined;
    if (a0 !== undefined && a1 !== undefined && s.agentAnon.length)
      footprint.agent = {
        rssBytes: median(s.agentRss),
        rssAnonBytes: median(s.agentAnon),
        pssBytes: median(s.agentPss),
        cpuPercent: ((a1 - a0) / elapsed) * 100,
      };
    return footprint;
  });
}

/** The tray app's polling: one GET /status every `every` seconds, on one kept-alive connection. */
export function poller(everySeconds: number) {
  return async (stopAt: number) => {
    const pool = new Pool(STATUS_ORIGIN, { connections: 1 });
    try {
      for (let at = performance.now(); at < stopAt; at += everySeconds * 1000) {
        await sleep(Math.max(0, at - performance.now()));
        const response = await pool.request({ method: 'GET', path: '/status' });
        await response.body.text();
        if (response.statusCode !== 200) throw new Error(`GET /status: ${response.statusCode}`);
      }
    } finally {
      await pool.close();
    }
  };
}

/** Cumulative bucket counts of the status histogram, summed over its series for /status (any route label). */
export function statusBuckets(text: string): Map<number, number> | null {
  const buckets = new Map<number, number>();
  const line = new RegExp(`^${STATUS_METRIC}_bucket\\{([^}]*)\\} ([0-9.eE+-]+)$`);
  for (const raw of text.split('\n')) {
    const match = line.exec(raw.trim());
    if (!match) continue;
    const labels = Object.fromEntries(
      [...(match[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] as string, m[2] as string]),
    );
    const route = labels.route ?? labels.path;
    if (route !== undefined && route !== '/status') continue;
    const le = labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(match[2]));
  }
  return buckets.size ? buckets : null;
}

async function metrics(): Promise<string> {
  const response = await request(`${STATUS_ORIGIN}/metrics`);
  return response.body.text();
}

/** ≥ 10,000 GET /status, closed loop (autocannon), judged by the server's own histogram delta. */
export async function statusLoad(requests: number, connections: number): Promise<StatusLoad> {
  const before = statusBuckets(await metrics());
  const result = await autocannon({ url: `${STATUS_ORIGIN}/status`, connections, amount: requests });
  const after = statusBuckets(await metrics());
  let server: StatusLoad['server'] = null;
  if (before && after) {
    const delta = (le: number) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
    const les = [...after.keys()].sort((a, b) => a - b);
    server = {
      count: delta(Number.POSITIVE_INFINITY),
      within1ms: delta(0.001),
      within2ms: delta(0.002),
      buckets: les.filter(Number.isFinite).map((le) => [le, delta(le)] as [number, number]),
    };
  }
  return {
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    clientP99Ms: result.latency.p99,
    server,
  };
}

/** SIGTERM to the container's PID 1 (what `docker stop` does); times PID 1's exit and the last process's. */
export async function measureStop(node: WorkerNode): Promise<{ mainExitSeconds: number; allGoneSeconds: number }> {
  const pids = node.cgroup.pids();
  const t0 = performance.now();
  process.kill(node.mainPid, 'SIGTERM');
  let mainExit: number | undefined;
  const limit = (node.drainDeadlineSeconds + 60) * 1000;
  while (performance.now() - t0 < limit) {
    if (mainExit === undefined && processGone(node.mainPid)) mainExit = (performance.now() - t0) / 1000;
    if (mainExit !== undefined && [...pids, ...node.cgroup.pids()].every(processGone))
      return { mainExitSeconds: mainExit, allGoneSeconds: (performance.now() - t0) / 1000 };
    await sleep(10);
  }
  throw new Error(`${node.name} did not stop within ${limit / 1000} s of SIGTERM`);
}

/** `ray start`'s command line inside a node's container. */
export function rayStartLine(node: WorkerNode): string | undefined {
  const queue = [node.mainPid];
  while (queue.length) {
    const pid = queue.shift() as number;
    const title = processTitle(pid);
    if (/\bray start\b|\/ray start /.test(title) || /bin\/ray\s+start/.test(title)) return title;
    queue.push(...children(pid));
  }
  return undefined;
}

/** The agent's JSON log as a timeline: where its start-up and stop time goes. */
export async function agentLog(node: WorkerNode): Promise<Array<[number, string]>> {
  const logs = await run('docker', ['logs', node.name]);
  const lines: Array<[number, string]> = [];
  for (const line of `${logs.stdout}\n${logs.stderr}`.split('\n')) {
    try {
      const entry = JSON.parse(line) as { time?: string | number; msg?: string };
      if (entry.time && entry.msg)
        lines.push([Math.round(new Date(entry.time).getTime() - node.startedAt) / 1000, entry.msg.slice(0, 120)]);
    } catch {
      // not a log line of the agent's
    }
  }
  return lines.sort((a, b) => a[0] - b[0]).slice(0, 60);
}

/** A bare `node` in the same image under the same user and hardening: the floor under the agent's memory. */
export async function bareNode(imageId: string, flags: string[]): Promise<{ rssBytes: number; rssAnonBytes: number }> {
  const bare = await run('docker', [
    'run',
    '--rm',
    '--network=none',
    ...flags,
    '--entrypoint',
    'node',
    imageId,
    '-e',
    "setTimeout(() => { const s = require('fs').readFileSync('/proc/self/status', 'utf8'); console.log(/VmRSS:\\s+(\\d+)/.exec(s)[1], /RssAnon:\\s+(\\d+)/.exec(s)[1]); }, 2000)",
  ]);
  const [rss, anon] = bare.stdout
    .trim()
    .split(' ')
    .map((kib) => Number(kib) * 1024);
  if (!rss || !anon) throw new Error(`bare node in the image printed no memory: ${bare.stderr.trim()}`);
  return { rssBytes: rss, rssAnonBytes: anon };
}
