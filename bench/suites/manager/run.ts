import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PROVIDER_PAGE_MAX, ProviderList } from '@ray-agent/protocol';
import { Agent as Dispatcher, request } from 'undici';
import { makePki, type TestPki as Pki } from '../../../e2e/support/tls.js';
import { MANAGER_BIN } from '../../lib/cluster.js';
import { processCpuSeconds, processMemory } from '../../lib/procfs.js';
import type { SuiteContext } from '../../lib/suite.js';
import { exited, log, mustRun, sleep, spawnLogged, waitFor } from '../../lib/util.js';
import type { LoadResult, LoadSpec } from './loadgen.js';
import { summarizeProfile } from './profile.js';
import type { Latency, Listing, LoadRun, ManagerData, ManagerSettings, StormRep } from './schema.js';
import { seed } from './seed.js';

/** A port of the run's own (inner suites run in a loopback-only namespace; a dev run shares the host's loopback). */
const PORT = 19443;
const ORIGIN = `https://127.0.0.1:${PORT}`;
const HERE = fileURLToPath(new URL('.', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const INTERVAL_SECONDS = 10;

/** The manager on core 0 and everything that loads it on core 1, when there are two cores to give. */
const PIN = cpus().length >= 2 ? { manager: '0', load: '1' } : { manager: null, load: null };
const pinned = (core: string | null, command: string, args: string[]): [string, string[]] =>
  core === null ? [command, args] : ['taskset', ['-c', core, command, ...args]];

function quantiles(values: number[]): Latency {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
  const mean = sorted.reduce((sum, v) => sum + v, 0) / Math.max(1, sorted.length);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1] ?? 0, mean };
}

async function startManager(dir: string, pki: Pki, nodeFlags: string[] = []): Promise<ChildProcess> {
  const [command, args] = pinned(PIN.manager, process.execPath, [
    ...nodeFlags,
    MANAGER_BIN,
    'serve',
    ...['--db', join(dir, 'manager.db'), '--cert', pki.serverCert, '--key', pki.serverKey],
    ...['--host', '127.0.0.1', '--port', String(PORT), '--heartbeat-interval', String(INTERVAL_SECONDS)],
    // Every simulated provider comes from 127.0.0.1: no per-address limit. The per-provider limit stays on (its
    // cost is part of a heartbeat), set above the load generator's replay rate.
    ...['--heartbeat-limit-per-client', '0', '--heartbeat-limit-per-provider', '1000000'],
  ]);
  const child = spawnLogged(command, args, join(dir, 'manager.log'));
  const dispatcher = new Dispatcher({ connect: { ca: readFileSync(pki.caCert, 'utf8') } });
  try {
    await waitFor(
      'the manager to answer',
      async () => {
        const response = await request(`${ORIGIN}/healthz`, { dispatcher });
        await response.body.dump();
        return response.statusCode === 200 ? true : undefined;
      },
      60_000,
      50,
    );
  } finally {
    await dispatcher.close();
  }
  if (!child.pid) throw new Error('the manager did not start');
  return child;
}

async function load(spec: LoadSpec): Promise<LoadResult> {
  const [command, args] = pinned(PIN.load, process.execPath, [
    '--import',
    TSX,
    join(HERE, 'loadgen.ts'),
    JSON.stringify(spec),
  ]);
  const out = await mustRun(command, args, { timeoutMs: (spec.seconds + 120) * 1000 });
  return JSON.parse(out.split('\n').pop() ?? '') as LoadResult;
}

async function loadRun(
  pid: number,
  endpoint: LoadRun['endpoint'],
  mode: LoadRun['mode'],
  settings: ManagerSettings,
  bodiesFile: string,
): Promise<LoadRun> {
  const connections = mode === 'open' ? settings.openConnections : settings.closedConnections;
  const cpu0 = processCpuSeconds(pid) ?? Number.NaN;
  const result = await load({
    url: ORIGIN,
    method: endpoint === 'heartbeat' ? 'POST' : 'GET',
    path: endpoint === 'heartbeat' ? '/api/heartbeat' : '/healthz',
    connections,
    seconds: settings.seconds,
    ...(mode === 'open' ? { overallRate: settings.rate, phases: 10 } : {}),
    ...(endpoint === 'heartbeat' ? { bodiesFile } : {}),
  });
  const managerCpuSeconds = Math.max(0, (processCpuSeconds(pid) ?? Number.NaN) - cpu0);
  return {
    endpoint,
    mode,
    connections,
    offeredRate: mode === 'open' ? settings.rate : null,
    seconds: result.seconds,
    ok: result.ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    // Over the scheduled length: autocannon's own duration includes draining the last answers. Its per-connection
    // quota is granted at connect and then every second, so a run may send up to one second's quota more than
    // rate × seconds: the open loop's answered-rate check is lenient by at most 1 / seconds.
    answeredPerSecond: result.ok / settings.seconds,
    latencyMs: result.latencyMs,
    managerCpuSeconds: Number.isFinite(managerCpuSeconds) ? managerCpuSeconds : 0,
    loadCpuSeconds: result.cpuSeconds,
  };
}

/** Every page of the listing, one after another over one keep-alive connection, as an operator's tool walks it. */
async function walkListing(pki: Pki, adminToken: string, providers: number, walks: number): Promise<Listing> {
  const dispatcher = new Dispatcher({ connect: { ca: readFileSync(pki.caCert, 'utf8') }, connections: 1 });
  const latencies: number[] = [];
  let complete = true;
  let seen = 0;
  try {
    for (let walk = 0; walk < walks; walk++) {
      const ids = new Set<string>();
      let after: string | null = null;
      do {
        const query: string = `?limit=${PROVIDER_PAGE_MAX}${after === null ? '' : `&after=${after}`}`;
        const t0 = performance.now();
        const response = await request(`${ORIGIN}/api/providers${query}`, {
          dispatcher,
          headers: { authorization: `Bearer ${adminToken}` },
        });
        const text = await response.body.text();
        latencies.push(performance.now() - t0);
        if (response.statusCode !== 200) throw new Error(`GET /api/providers${query}: ${response.statusCode} ${text}`);
        const page = ProviderList.parse(JSON.parse(text));
        for (const p of page.providers) ids.add(p.providerId);
        seen += page.providers.length;
        after = page.nextAfter ?? null;
      } while (after !== null);
      if (ids.size !== providers) complete = false;
    }
  } finally {
    await dispatcher.close();
  }
  return {
    pages: latencies.length,
    providersSeen: seen,
    complete: complete && seen === providers * walks,
    latencyMs: quantiles(latencies),
  };
}

type StormEvent = { event: string; [key: string]: unknown };

/** Kills the manager under N real heartbeat loops and starts it again; how long until every agent is back. */
async function storm(
  dir: string,
  pki: Pki,
  manager: { child: ChildProcess },
  agentsFile: string,
  agents: number,
  timeoutSeconds: number,
): Promise<StormRep> {
  const [command, args] = pinned(PIN.load, process.execPath, [
    '--import',
    TSX,
    join(HERE, 'storm-agents.ts'),
    JSON.stringify({ url: ORIGIN, caFile: pki.caCert, agentsFile, intervalSeconds: INTERVAL_SECONDS }),
  ]);
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const events: StormEvent[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    events.push(JSON.parse(line) as StormEvent);
    for (const wake of waiters.splice(0)) wake();
  });
  const next = async (name: string, ms: number): Promise<StormEvent | null> => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const found = events.find((e) => e.event === name);
      if (found) return found;
      await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), sleep(1000)]);
    }
    return null;
  };
  try {
    if (!(await next('healthy', (INTERVAL_SECONDS + 120) * 1000))) {
      // This machine could not hold the fleet in steady state (one process of simulated agents, one manager):
      // recorded as a storm that was never absorbed, with how many were heartbeating, not as a crash of the run.
      child.stdin?.write('mark\n');
      const marked = await next('marked', 10_000);
      const counted = marked
        ? `only ${Number(marked.healthy)} of ${agents} agents heartbeating`
        : `not all ${agents} agents heartbeating (the simulated agents were too busy to count)`;
      log(`  storm: ${counted} after ${INTERVAL_SECONDS + 120} s; not killing the manager`);
      return {
        agents,
        healthyBefore: Number(marked?.healthy ?? 0),
        absorbedSeconds: null,
        fromKillSeconds: null,
        recovered: 0,
        recoveredSeconds: null,
        failures: {},
        managerDownSeconds: 0,
      };
    }
    // One more interval of steady state: every agent back on its own cadence.
    await sleep(INTERVAL_SECONDS * 1000);
    child.stdin?.write('mark\n');
    const marked = await next('marked', 10_000);
    const killAt = Date.now();
    manager.child.kill('SIGKILL');
    await exited(manager.child);
    const startAt = Date.now();
    manager.child = await startManager(dir, pki);
    const downSeconds = (Date.now() - killAt) / 1000;
    const done = await next('recovered', timeoutSeconds * 1000);
    const times = (done?.times as number[] | undefined) ?? [];
    const after = times.map((t) => (t - startAt) / 1000);
    const q = quantiles(after);
    return {
      agents,
      healthyBefore: Number(marked?.healthy ?? 0),
      absorbedSeconds: done ? Math.max(0, (Number(done.lastAt) - startAt) / 1000) : null,
      fromKillSeconds: done ? Math.max(0, (Number(done.lastAt) - killAt) / 1000) : null,
      recovered: done ? agents : 0,
      recoveredSeconds: done ? { p50: Math.max(0, q.p50), p90: Math.max(0, q.p90), max: Math.max(0, q.max) } : null,
      failures: (done?.failures as Record<string, number> | undefined) ?? {},
      managerDownSeconds: downSeconds,
    };
  } finally {
    child.stdin?.write('stop\n');
    const gone = exited(child);
    if (!(await Promise.race([gone.then(() => true), sleep(30_000).then(() => false)]))) child.kill('SIGKILL');
  }
}

export async function runManager(context: SuiteContext, settings: ManagerSettings): Promise<ManagerData> {
  const dir = join(context.tmp, 'manager');
  mkdirSync(join(dir, 'pki'), { recursive: true });
  const pki = await makePki(['127.0.0.1', 'localhost'], { dir: join(dir, 'pki'), key: 'ecdsa' });
  const files = { bodies: join(dir, 'heartbeats.json'), agents: join(dir, 'agents.json') };
  const seeded = seed(join(dir, 'manager.db'), settings.providers, files, settings.stormAgents);
  log(`manager: ${settings.providers} providers stored in ${seeded.seconds.toFixed(1)} s`);
  const data: ManagerData = {
    providers: settings.providers,
    seedSeconds: seeded.seconds,
    pinned: PIN,
    tls: 'TLS 1.3, ECDSA P-256 server certificate from a private CA; keep-alive connections',
    pageLimit: PROVIDER_PAGE_MAX,
    reps: [],
    managerRssBytes: 0,
    storm: [],
    profile: null,
  };
  const manager = { child: await startManager(dir, pki) };
  try {
    const pid = () => manager.child.pid as number;
    // Warm-up, not measured: JIT, SQLite's page cache.
    await load({
      url: ORIGIN,
      method: 'POST',
      path: '/api/heartbeat',
      connections: settings.closedConnections,
      seconds: Math.max(2, settings.seconds / 2),
      bodiesFile: files.bodies,
    });
    for (let rep = 0; rep < settings.reps; rep++) {
      const order: Array<LoadRun['endpoint']> = rep % 2 === 0 ? ['healthz', 'heartbeat'] : ['heartbeat', 'healthz'];
      const runs: LoadRun[] = [];
      for (const mode of ['closed', 'open'] as const)
        for (const endpoint of order) runs.push(await loadRun(pid(), endpoint, mode, settings, files.bodies));
      const listing = await walkListing(pki, seeded.adminToken, settings.providers, settings.listingWalks);
      data.reps.push({ rep, runs, listing });
      const line = (mode: string, endpoint: string) => {
        const r = runs.find((x) => x.mode === mode && x.endpoint === endpoint);
        return `${endpoint} ${r?.answeredPerSecond.toFixed(0)}/s p99 ${r?.latencyMs.p99.toFixed(1)} ms`;
      };
      log(
        `  rep ${rep + 1}: closed ${line('closed', 'heartbeat')}, ${line('closed', 'healthz')}; open ${line('open', 'heartbeat')}; listing p99 ${listing.latencyMs.p99.toFixed(1)} ms`,
      );
    }
    data.managerRssBytes = processMemory(pid())?.rss ?? 0;
    for (let rep = 0; rep < settings.stormReps && settings.stormAgents > 0; rep++) {
      const result = await storm(dir, pki, manager, files.agents, settings.stormAgents, settings.stormTimeoutSeconds);
      data.storm.push(result);
      if (result.healthyBefore < result.agents) break; // the next repetition would not hold the fleet either
      log(
        `  storm ${rep + 1}: ${settings.stormAgents} agents back in ${result.absorbedSeconds?.toFixed(1) ?? 'never'} s`,
      );
    }
  } finally {
    manager.child.kill('SIGTERM');
    await exited(manager.child);
  }
  if (settings.profileSeconds > 0) {
    // A separate run under V8's sampling profiler, for where the time goes (never mixed with the figures).
    const profDir = join(dir, 'cpu-profile');
    const profiled = await startManager(dir, pki, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
    try {
      await load({
        url: ORIGIN,
        method: 'POST',
        path: '/api/heartbeat',
        connections: settings.closedConnections,
        seconds: settings.profileSeconds,
        bodiesFile: files.bodies,
      });
    } finally {
      profiled.kill('SIGTERM');
      await exited(profiled);
    }
    await sleep(200);
    const file = readdirSync(profDir).find((name) => name.endsWith('.cpuprofile'));
    if (file) data.profile = summarizeProfile(join(profDir, file));
  }
  return data;
}
