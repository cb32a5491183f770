import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Agent as Dispatcher, request } from 'undici';
import { makePki } from '../../e2e/support/tls.js';
import { Store } from '../../manager/src/store.js';
import { MANAGER_BIN } from '../lib/cluster.js';
import { type LoadgenResult, runLoadgen } from '../lib/loadgen.js';
import { processCpuSeconds, processMemory } from '../lib/procfs.js';
import type { Settings } from '../lib/settings.js';
import { exited, log, sleep, spawnLogged, waitFor } from '../lib/util.js';

const PORT = 9443;

export interface ManagerRun extends LoadgenResult {
  endpoint: 'heartbeat' | 'healthz';
  managerCpuSeconds: number;
}

export interface ManagerCapacity {
  providers: number;
  seedSeconds: number;
  managerRssBytes: number;
  reps: Array<{ rep: number; runs: ManagerRun[] }>;
  profile?: {
    seconds: number;
    samples: number;
    top: Array<{ name: string; selfPercent: number }>;
    byArea: Record<string, number>;
  };
}

/** N providers registered through the manager's own store code, and one heartbeat request body for each. */
function seed(db: string, providers: number, requestsFile: string): number {
  const t0 = performance.now();
  const store = new Store(db);
  const bodies: Array<{ authorization: string; body: string }> = [];
  store.db.transaction(() => {
    for (let i = 0; i < providers; i++) {
      const registered = store.register(
        {
          installId: randomUUID(),
          hostname: `bench-host-${i}`,
          cpuCores: 8,
          memoryBytes: 16 * 1024 ** 3,
          ipAddress: '127.0.0.1',
          versions: { agent: '0.1.0', ray: '2.58.0', python: '3.11.2' },
          limits: { cpus: 2, memoryBytes: 4 * 1024 ** 3 },
        },
        null,
      );
      bodies.push({
        authorization: `Bearer ${registered.credential}`,
        body: JSON.stringify({
          providerId: registered.providerId,
          bootId: randomUUID(),
          state: 'contributing',
          rayNode: 'joined',
          cpuPercent: 3.5,
          memoryBytes: 412_000_000,
          memoryPercent: 9.6,
          activeTasks: 1,
          recentErrors: [],
          sentAt: new Date().toISOString(),
        }),
      });
    }
  })();
  store.close();
  // Shuffled, so consecutive heartbeats hit rows all over the table as a real fleet's would.
  for (let i = bodies.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [bodies[i], bodies[j]] = [bodies[j] as (typeof bodies)[number], bodies[i] as (typeof bodies)[number]];
  }
  writeFileSync(requestsFile, JSON.stringify(bodies));
  return (performance.now() - t0) / 1000;
}

/** Self time from a V8 .cpuprofile, by function and by area (bundle, Node internals, native, GC). */
function summarizeProfile(file: string): NonNullable<ManagerCapacity['profile']> {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
    timeDeltas: number[];
    startTime: number;
    endTime: number;
  };
  const byId = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const self = new Map<string, number>();
  const areas: Record<string, number> = {};
  let busy = 0;
  for (const id of profile.samples) {
    const frame = byId.get(id);
    if (!frame || frame.functionName === '(idle)') continue;
    busy++;
    const where = frame.url ? `${basename(frame.url)}:${frame.lineNumber + 1}` : '';
    const name = `${frame.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    self.set(name, (self.get(name) ?? 0) + 1);
    const area = frame.url.startsWith('node:')
      ? frame.url.split('/').slice(0, 2).join('/')
      : frame.url.endsWith('manager.mjs')
        ? 'manager bundle (fastify, pino, zod, app)'
        : frame.url
          ? basename(frame.url)
          : frame.functionName;
    areas[area] = (areas[area] ?? 0) + 1;
  }
  const percent = (count: number) => Math.round((count / Math.max(1, busy)) * 1000) / 10;
  return {
    seconds: (profile.endTime - profile.startTime) / 1e6,
    samples: busy,
    top: [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 20)
      .map(([name, count]) => ({ name, selfPercent: percent(count) })),
    byArea: Object.fromEntries(
      Object.entries(areas)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 15)
        .map(([area, count]) => [area, percent(count)]),
    ),
  };
}

async function startManager(
  dir: string,
  pki: { serverCert: string; serverKey: string; caCert: string },
  nodeFlags: string[] = [],
) {
  const child = spawnLogged(
    process.execPath,
    [
      ...nodeFlags,
      MANAGER_BIN,
      'serve',
      '--db',
      join(dir, 'manager.db'),
      '--cert',
      pki.serverCert,
      '--key',
      pki.serverKey,
      '--host',
      '127.0.0.1',
      '--port',
      String(PORT),
      '--heartbeat-interval',
      '10',
      // The load generator is one client replaying each provider's heartbeat far faster than its cadence.
      '--heartbeat-limit-per-client',
      '0',
      '--heartbeat-limit-per-provider',
      '0',
    ],
    join(dir, 'manager.log'),
  );
  const dispatcher = new Dispatcher({ connect: { ca: readFileSync(pki.caCert, 'utf8') } });
  try {
    await waitFor(
      'the manager to answer',
      async () => {
        const response = await request(`https://127.0.0.1:${PORT}/healthz`, { dispatcher });
        await response.body.dump();
        return response.statusCode === 200 ? true : undefined;
      },
      30_000,
    );
  } finally {
    await dispatcher.close();
  }
  if (!child.pid) throw new Error('the manager did not start');
  return child;
}

export async function managerSuite(settings: Settings['manager'], tmp: string): Promise<ManagerCapacity[]> {
  const results: ManagerCapacity[] = [];
  for (const providers of settings.providers) {
    const dir = join(tmp, `manager-${providers}`);
    mkdirSync(join(dir, 'pki'), { recursive: true });
    const pki = await makePki(['127.0.0.1', 'localhost'], { dir: join(dir, 'pki') });
    const requestsFile = join(dir, 'heartbeats.json');
    const seedSeconds = seed(join(dir, 'manager.db'), providers, requestsFile);
    log(`manager: ${providers} providers registered in ${seedSeconds.toFixed(1)} s`);
    const manager = await startManager(dir, pki);
    const pid = manager.pid as number;
    const load = async (
      endpoint: 'heartbeat' | 'healthz',
      mode: 'closed' | 'open',
      durationS: number,
      warmupS: number,
    ) => {
      const cpu0 = processCpuSeconds(pid) ?? Number.NaN;
      const result = await runLoadgen({
        origin: `https://127.0.0.1:${PORT}`,
        ca: pki.caCert,
        connections: settings.connections,
        mode,
        ...(mode === 'open' ? { rate: settings.rate } : {}),
        durationS,
        warmupS,
        method: endpoint === 'heartbeat' ? 'POST' : 'GET',
        path: endpoint === 'heartbeat' ? '/api/heartbeat' : '/healthz',
        ...(endpoint === 'heartbeat' ? { requestsFile } : {}),
      });
      return { ...result, endpoint, managerCpuSeconds: (processCpuSeconds(pid) ?? Number.NaN) - cpu0 };
    };
    const capacity: ManagerCapacity = { providers, seedSeconds, managerRssBytes: 0, reps: [] };
    try {
      // Warm-up: JIT, TLS sessions and SQLite's page cache, not measured.
      await load('heartbeat', 'closed', Math.max(1, settings.seconds / 2), 0);
      for (let rep = 0; rep < settings.reps; rep++) {
        const order: Array<'heartbeat' | 'healthz'> =
          rep % 2 === 0 ? ['healthz', 'heartbeat'] : ['heartbeat', 'healthz'];
        const runs: ManagerRun[] = [];
        for (const mode of ['closed', 'open'] as const)
          for (const endpoint of order) runs.push(await load(endpoint, mode, settings.seconds, settings.warmupSeconds));
        capacity.reps.push({ rep, runs });
        const line = (mode: string, endpoint: string) => {
          const run = runs.find((r) => r.mode === mode && r.endpoint === endpoint);
          return `${endpoint} ${run?.perSecond.toFixed(0)}/s p99 ${run?.latencyMs.p99?.toFixed(1)} ms`;
        };
        log(
          `  rep ${rep + 1}: closed ${line('closed', 'heartbeat')}, ${line('closed', 'healthz')}; open ${line('open', 'heartbeat')}`,
        );
      }
      capacity.managerRssBytes = processMemory(pid)?.rss ?? 0;
    } finally {
      process.kill(pid, 'SIGTERM');
      await exited(manager);
    }
    if (settings.profileSeconds > 0) {
      // A separate run under V8's sampling profiler, for where the time goes (never mixed with the figures).
      const profDir = join(dir, 'cpu-profile');
      const profiled = await startManager(dir, pki, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
      try {
        await runLoadgen({
          origin: `https://127.0.0.1:${PORT}`,
          ca: pki.caCert,
          connections: settings.connections,
          mode: 'closed',
          durationS: settings.profileSeconds,
          warmupS: 0,
          method: 'POST',
          path: '/api/heartbeat',
          requestsFile,
        });
      } finally {
        process.kill(profiled.pid as number, 'SIGTERM');
        await exited(profiled);
      }
      await sleep(200);
      const file = readdirSync(profDir).find((name) => name.endsWith('.cpuprofile'));
      if (file) capacity.profile = summarizeProfile(join(profDir, file));
    }
    results.push(capacity);
  }
  return results;
}
