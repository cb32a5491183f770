// The benchmarks of issue 5, one command: `npm run bench` (full), or `npx tsx bench/run.ts --profile quick`.
//
//   --profile full|quick|smoke   how much to do (bench/lib/settings.ts); full is what docs/BENCHMARKS.md records
//   --only image,python,manager,boinc,nodes,overlay
//   --out DIR                    where the raw results go (default bench/results; the report reads them there)
//   --no-report                  do not regenerate docs/BENCHMARKS.md and docs/bench-throughput.png
//
// The run has two halves. The outer one (this process) checks the machine, makes a private network namespace whose
// only interface is loopback (a container started with --network none holds it), then runs the inner half inside
// it with nsenter: every Ray, manager and status-endpoint connection of the benchmarks stays on that loopback.
// When the inner half ends, for whatever reason, the outer one removes every container, volume and cgroup the run
// made (all carry the run's ID) and regenerates the report.
// The overlay suite is the exception: it needs real separate network namespaces (providers behind NAT routers, a
// WireGuard gateway), so the outer half runs it itself, after the inner half, on Docker networks it makes and
// removes (bench/suites/overlay.ts).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BenchCluster, ensureVenv, LABEL, MANAGER_BIN } from './lib/cluster.js';
import { machine } from './lib/machine.js';
import { PROFILES, type Settings } from './lib/settings.js';
import { BENCH_DIR, docker, log, run } from './lib/util.js';
import { writeReport } from './report.js';
import { boincSuite } from './suites/boinc.js';
import { imageSuite } from './suites/image.js';
import { managerSuite } from './suites/manager.js';
import { nodesSuite } from './suites/nodes.js';
import { overlaySuite } from './suites/overlay.js';
import { pythonSuite } from './suites/python.js';

const SUITES = ['image', 'python', 'manager', 'boinc', 'nodes', 'overlay'] as const;
/** The suites that run inside the loopback-only namespace. */
const INNER_SUITES: readonly Suite[] = ['image', 'python', 'manager', 'boinc', 'nodes'];
type Suite = (typeof SUITES)[number];

const { values: args } = parseArgs({
  options: {
    profile: { type: 'string', default: 'full' },
    only: { type: 'string' },
    out: { type: 'string', default: join(BENCH_DIR, 'results') },
    'no-report': { type: 'boolean', default: false },
    inner: { type: 'boolean', default: false },
    'run-id': { type: 'string' },
    holder: { type: 'string' },
    'image-id': { type: 'string' },
  },
});

const profile = args.profile as Settings['profile'];
const settings = PROFILES[profile];
if (!settings) throw new Error(`--profile must be one of ${Object.keys(PROFILES).join(', ')}`);
const only = (args.only?.split(',') ?? [...SUITES]) as Suite[];
for (const suite of only) if (!SUITES.includes(suite)) throw new Error(`--only: unknown suite ${suite}`);
const outDir = resolve(args.out);
const IMAGE = process.env.AGENT_IMAGE ?? 'ray-agent:dev';

/** The same words a person would type to get this run again. */
function command(): string {
  const parts = ['npx tsx bench/run.ts', `--profile ${profile}`];
  if (args.only) parts.push(`--only ${args.only}`);
  return parts.join(' ');
}

/** Runs one suite and writes its results file, with the machine's state before and after. */
async function save<T>(suite: Suite, runId: string, body: () => Promise<T>): Promise<void> {
  const startedAt = new Date().toISOString();
  const before = await machine();
  const data = await body();
  const after = await machine();
  const file = join(outDir, `${suite}.json`);
  const doc = {
    suite,
    profile,
    runId,
    command: `${command()} (suite ${suite})`,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: {
      ...before,
      loadAverage: [...before.loadAverage, ...after.loadAverage],
      otherContainers: Math.max(before.otherContainers, after.otherContainers),
    },
    settings: suite === 'image' ? null : settings[suite],
    data,
  };
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  log(`wrote ${file}`);
}

function runTmp(runId: string): string {
  const tmp = mkdtempSync(join(tmpdir(), `ray-bench-${runId}-`));
  mkdirSync(outDir, { recursive: true });
  log(`run ${runId} (${profile}); logs in ${tmp}`);
  return tmp;
}

async function inner(): Promise<void> {
  const runId = args['run-id'] as string;
  const tmp = runTmp(runId);
  const saveSuite = <T>(suite: Suite, body: () => Promise<T>) => save(suite, runId, body);
  const imageId = args['image-id'] as string;
  if (only.includes('image')) await saveSuite('image', () => imageSuite(IMAGE, imageId));
  if (only.includes('python'))
    await saveSuite('python', () => pythonSuite(imageId, settings.python.loops, settings.python.reps));
  if (only.includes('manager')) await saveSuite('manager', () => managerSuite(settings.manager, tmp));
  if (only.includes('boinc')) await saveSuite('boinc', () => boincSuite(settings.boinc, tmp));
  if (only.includes('nodes')) {
    const cluster = new BenchCluster(runId, args.holder as string, imageId, join(tmp, 'cluster'));
    try {
      await cluster.start();
      await saveSuite('nodes', async () => ({ imageId, ...(await nodesSuite(cluster, settings.nodes)) }));
    } finally {
      await cluster.stop();
    }
  }
  // Logs are kept when asked (BENCH_KEEP=1) and whenever a suite failed (this line is not reached then).
  if (!process.env.BENCH_KEEP) rmSync(tmp, { recursive: true, force: true });
}

/** Removes everything a run made, found by its ID: containers, volumes, and the plain node's cgroups. */
async function sweep(runId: string): Promise<void> {
  const containers = (await run('docker', ['ps', '-aq', '--filter', `label=${LABEL}=${runId}`])).stdout
    .split('\n')
    .filter(Boolean);
  if (containers.length) await run('docker', ['rm', '-f', '-v', ...containers]);
  const volumes = (await run('docker', ['volume', 'ls', '-q', '--filter', `label=${LABEL}=${runId}`])).stdout
    .split('\n')
    .filter(Boolean);
  if (volumes.length) await run('docker', ['volume', 'rm', '-f', ...volumes]);
  // The plain node's cgroups sit beside the containers' (e.g. /sys/fs/cgroup/cpu/docker/NAME): two levels down.
  const tops = ['/sys/fs/cgroup', ...['memory', 'cpu', 'cpuacct'].map((c) => join('/sys/fs/cgroup', c))];
  const parents = tops.flatMap((top) => [top, ...subdirs(top)]);
  for (const parent of parents)
    for (const name of subdirs(parent).filter((dir) => dir.split('/').pop()?.startsWith(`ray-bench-${runId}-`))) {
      for (const pid of readFileSafe(join(name, 'cgroup.procs')).split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      try {
        rmdirSync(name);
      } catch {
        log(`could not remove cgroup ${name}`);
      }
    }
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => join(dir, entry.name));
  } catch {
    return [];
  }
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

async function outer(): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('the benchmarks need root (nsenter, cgroups, unshare)');
  const imageId = (await docker('image', 'inspect', '-f', '{{.Id}}', IMAGE)).trim();
  if (!existsSync(MANAGER_BIN)) {
    log('building the manager bundle');
    await run('npm', ['run', 'build', '-w', 'manager'], { timeoutMs: 300_000 });
  }
  if (only.includes('nodes')) await ensureVenv();
  const runId = randomBytes(3).toString('hex');
  const code = only.some((suite) => INNER_SUITES.includes(suite)) ? await runInner(runId, imageId) : 0;
  if (code === 0 && only.includes('overlay')) {
    const tmp = runTmp(runId);
    // Not in the holder's namespace: the overlay needs networks of its own (bench/suites/overlay.ts).
    await save('overlay', runId, () => overlaySuite(settings.overlay, tmp));
    if (!process.env.BENCH_KEEP) rmSync(tmp, { recursive: true, force: true });
  }
  if (code === 0 && !args['no-report']) await writeReport(outDir);
  return code;
}

/** Runs the inner half in the loopback-only namespace; removes what it made, whatever happens. */
async function runInner(runId: string, imageId: string): Promise<number> {
  const holder = `ray-bench-${runId}-net`;
  let code = 1;
  try {
    // The image is pinned by ID for the whole run: another session rebuilding the tag cannot change it midway.
    await docker(
      'run',
      '-d',
      '--name',
      holder,
      '--label',
      `${LABEL}=${runId}`,
      '--network=none',
      '--entrypoint',
      'sleep',
      imageId,
      'infinity',
    );
    const pid = (await docker('inspect', '-f', '{{.State.Pid}}', holder)).trim();
    const child = spawn(
      'nsenter',
      [
        `--net=/proc/${pid}/ns/net`,
        '--',
        process.execPath,
        ...process.execArgv,
        ...process.argv.slice(1),
        '--inner',
        `--run-id=${runId}`,
        `--holder=${holder}`,
        `--image-id=${imageId}`,
      ],
      { stdio: 'inherit' },
    );
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    code = await new Promise<number>((done) => child.on('exit', (exitCode) => done(exitCode ?? 1)));
  } finally {
    await sweep(runId);
  }
  return code;
}

if (args.inner) {
  inner().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
} else {
  outer().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
