// The benchmarks of issue 11, one command: `npm run bench` (full), or `npx tsx bench/run.ts --profile quick`.
//
//   --profile full|quick|smoke   how much to do (each suite's `profiles`); full is what docs/BENCHMARKS.md records
//   --only SUITE,SUITE           a subset of the registry (bench/suites/index.ts)
//   --out DIR                    where the raw results go (default bench/results; the report reads them there)
//   --no-report                  do not regenerate docs/BENCHMARKS.md and its plot
//
// The run has two halves. The outer one (this process) checks the machine, lets each chosen suite prepare what needs
// the network (`prepare`), makes a private network namespace whose only interface is loopback (a container started
// with --network none holds it), then runs the inner half inside it with nsenter: every Ray, manager and
// status-endpoint connection of the inner suites stays on that loopback. When the inner half ends, for whatever
// reason, the outer one removes every container, volume and cgroup the run made (all carry the run's ID), runs the
// suites that need networks of their own (`inner: false`: the overlay), and regenerates the report.
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
import { LABEL, MANAGER_BIN } from './lib/cluster.js';
import { machine } from './lib/machine.js';
import type { Profile, SuiteContext } from './lib/suite.js';
import { BENCH_DIR, docker, log, run } from './lib/util.js';
import { FORMAT, writeReport } from './report.js';
import { type AnySuite, SUITES, suiteNamed } from './suites/index.js';

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

const PROFILES: readonly Profile[] = ['full', 'quick', 'smoke'];
const profile = args.profile as Profile;
if (!PROFILES.includes(profile))
  throw new Error(`--profile: "${profile}" is not one of ${PROFILES.join(', ')} (e.g. --profile smoke)`);
const chosen: AnySuite[] = args.only ? args.only.split(',').map(suiteNamed) : [...SUITES];
const outDir = resolve(args.out);
const IMAGE = process.env.AGENT_IMAGE ?? 'ray-agent:dev';

/** The same words a person would type to get this run again. */
function command(): string {
  const parts = ['npx tsx bench/run.ts', `--profile ${profile}`];
  if (args.only) parts.push(`--only ${args.only}`);
  return parts.join(' ');
}

/** Runs one suite and writes its results file (the envelope: machine before and after, settings, data). */
async function save(suite: AnySuite, context: SuiteContext): Promise<void> {
  const startedAt = new Date().toISOString();
  const before = await machine();
  const settings = suite.profiles[profile];
  // Checked before it is written: a suite that returns malformed data fails here, not in the report later.
  const data = suite.data.parse(await suite.run(context, settings));
  const after = await machine();
  const file = join(outDir, `${suite.name}.json`);
  const doc = {
    format: FORMAT,
    suite: suite.name,
    profile,
    runId: context.runId,
    command: `${command()} (suite ${suite.name})`,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: {
      ...before,
      loadAverage: [...before.loadAverage, ...after.loadAverage],
      otherContainers: Math.max(before.otherContainers, after.otherContainers),
    },
    settings: settings ?? null,
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

const contextOf = (runId: string, tmp: string, imageId: string, holder: string | null): SuiteContext => ({
  runId,
  profile,
  tmp,
  image: IMAGE,
  imageId,
  holder,
});

async function inner(): Promise<void> {
  const runId = args['run-id'] as string;
  const tmp = runTmp(runId);
  const context = contextOf(runId, tmp, args['image-id'] as string, args.holder as string);
  for (const suite of chosen.filter((s) => s.inner)) await save(suite, context);
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
  const tops = ['/sys/fs/cgroup', ...['memory', 'cpu', 'cpuacct', 'cpuset'].map((c) => join('/sys/fs/cgroup', c))];
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
  for (const suite of chosen) await suite.prepare?.(profile);
  const runId = randomBytes(3).toString('hex');
  const code = chosen.some((s) => s.inner) ? await runInner(runId, imageId) : 0;
  const outside = chosen.filter((s) => !s.inner);
  if (code === 0 && outside.length) {
    const tmp = runTmp(runId);
    try {
      // Not in the holder's namespace: these suites make networks of their own.
      for (const suite of outside) await save(suite, contextOf(runId, tmp, imageId, null));
    } finally {
      await sweep(runId);
    }
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

const main = args.inner ? () => inner().then(() => 0) : outer;
main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
