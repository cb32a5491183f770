import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VENV } from '../../lib/cluster.js';
import type { SuiteContext } from '../../lib/suite.js';
import { log, mustRun } from '../../lib/util.js';
import type { PythonData, PythonSettings, Timed } from './schema.js';

// The loop sits in a function, as in the task: local-variable bytecode, not module-level globals.
const SCRIPT = `import sys, time
def loop(loops):
    x = 0
    for i in range(loops):
        x = (x + i * i) % 1000003
    return x
start = time.process_time()
loop(int(sys.argv[1]))
print(sys.version.split()[0], time.process_time() - start)
`;
const HYPERFINE = '/usr/bin/hyperfine';

interface HyperfineJson {
  results: Array<{ command: string; times: number[]; user: number; system: number }>;
}

const timed = (json: HyperfineJson, index: number): Timed => {
  const result = json.results[index];
  if (!result) throw new Error(`hyperfine: no result ${index}`);
  return { wallSeconds: result.times, cpuSeconds: result.user + result.system };
};

/**
 * The two arms run different builds of Python 3.11 (the image: Debian's; the host venv: the plain node's of the
 * older baseline), and a pure-Python loop measures the interpreter as much as the node. This times the CPU-bound
 * task's loop in each interpreter outside Ray, as CPU time, and, with hyperfine, the whole loop command and an
 * `import ray` probe (the agent imports Ray before it joins). In the image, hyperfine runs inside a plain container
 * (the host's binary mounted in: it needs only libc), so no `docker run` overhead is timed.
 */
export async function runPython(context: SuiteContext, settings: PythonSettings): Promise<PythonData> {
  const dir = join(context.tmp, 'python');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'loop.py'), SCRIPT);
  const hyperfine = await mustRun(HYPERFINE, ['--version']).catch(() => {
    throw new Error('the python suite needs hyperfine on the host (Debian: apt-get install hyperfine)');
  });
  const python = join(VENV, 'bin', 'python');
  const container = (entrypoint: string, args: string[]) =>
    mustRun('docker', [
      'run',
      '--rm',
      '--network=none',
      '-v',
      `${dir}:/bench-python:ro`,
      '-v',
      `${HYPERFINE}:/usr/local/bin/hyperfine:ro`,
      '--entrypoint',
      entrypoint,
      context.imageId,
      ...args,
    ]);
  const loopArms = {
    host: async () => (await mustRun(python, [join(dir, 'loop.py'), String(settings.loops)])).split(' '),
    image: async () => (await container('python3', ['/bench-python/loop.py', String(settings.loops)])).split(' '),
  };
  const hyperfineArgs = (py: string, script: string) => [
    '-N',
    '--style',
    'none',
    '--warmup',
    String(settings.warmup),
    '--runs',
    String(settings.commandRuns),
    `${py} ${script} ${settings.loops}`,
    `${py} -c "import ray"`,
  ];
  const commandArms = {
    host: async () => {
      const file = join(dir, 'host.json');
      await mustRun(HYPERFINE, [...hyperfineArgs(python, join(dir, 'loop.py')), '--export-json', file], {
        timeoutMs: 600_000,
      });
      return JSON.parse(await mustRun('cat', [file])) as HyperfineJson;
    },
    image: async () => {
      const args = hyperfineArgs('python3', '/bench-python/loop.py').map((a) => `'${a.replace(/'/g, `'\\''`)}'`);
      const out = await container('sh', [
        '-c',
        `hyperfine ${args.join(' ')} --export-json /tmp/hyperfine.json >/dev/null && cat /tmp/hyperfine.json`,
      ]);
      return JSON.parse(out) as HyperfineJson;
    },
  };

  const data: PythonData = {
    loops: settings.loops,
    reps: [],
    versions: { host: '', image: '' },
    commands: [],
    hyperfine,
  };
  for (let rep = 0; rep < settings.reps; rep++) {
    // Alternating order: whatever the machine's other load does, it falls on both arms alike.
    const order = rep % 2 === 0 ? (['host', 'image'] as const) : (['image', 'host'] as const);
    const loop: Partial<Record<'host' | 'image', string[]>> = {};
    const commands: Partial<Record<'host' | 'image', HyperfineJson>> = {};
    for (const arm of order) loop[arm] = await loopArms[arm]();
    for (const arm of order) commands[arm] = await commandArms[arm]();
    data.versions = { host: loop.host?.[0] ?? '', image: loop.image?.[0] ?? '' };
    data.reps.push({ host: Number(loop.host?.[1]), image: Number(loop.image?.[1]) });
    const of = (json: HyperfineJson | undefined) => {
      if (!json) throw new Error('hyperfine gave nothing');
      return { loop: timed(json, 0), importRay: timed(json, 1) };
    };
    data.commands?.push({ host: of(commands.host), image: of(commands.image) });
    log(
      `python rep ${rep + 1}: loop CPU s host ${data.reps.at(-1)?.host.toFixed(3)}, image ${data.reps.at(-1)?.image.toFixed(3)}`,
    );
  }
  return data;
}
