import { join } from 'node:path';
import { VENV } from '../lib/cluster.js';
import { log, mustRun } from '../lib/util.js';

/**
 * The two nodes run different builds of Python 3.11 (the image: Debian's 3.11.2; the plain node: the host's 3.11.7
 * venv), and a pure-Python loop measures the interpreter as much as the node. This times the CPU-bound task's exact
 * loop in each interpreter, outside Ray, alternating, as CPU time (so other load on the machine does not count).
 */
export interface PythonFigures {
  loops: number;
  reps: Array<{ host: number; image: number }>;
  versions: { host: string; image: string };
}

// The loop sits in a function, as in the task: local-variable bytecode, not module-level globals.
const SCRIPT = (loops: number) => `
import sys, time
def loop(loops):
    x = 0
    for i in range(loops):
        x = (x + i * i) % 1000003
    return x
start = time.process_time()
loop(${loops})
print(sys.version.split()[0], time.process_time() - start)
`;

export async function pythonSuite(imageId: string, loops: number, reps: number): Promise<PythonFigures> {
  const host = async () => (await mustRun(join(VENV, 'bin', 'python'), ['-c', SCRIPT(loops)])).split(' ');
  // A plain container: no CPU limit, no network; only the interpreter differs from the host run.
  const image = async () =>
    (
      await mustRun('docker', [
        'run',
        '--rm',
        '--network=none',
        '--entrypoint',
        'python3',
        imageId,
        '-c',
        SCRIPT(loops),
      ])
    ).split(' ');
  const figures: PythonFigures = { loops, reps: [], versions: { host: '', image: '' } };
  for (let rep = 0; rep < reps; rep++) {
    const order = rep % 2 === 0 ? [host, image] : [image, host];
    const [a, b] = [await (order[0] as typeof host)(), await (order[1] as typeof host)()];
    const [h, i] = rep % 2 === 0 ? [a, b] : [b, a];
    figures.versions = { host: h?.[0] ?? '', image: i?.[0] ?? '' };
    figures.reps.push({ host: Number(h?.[1]), image: Number(i?.[1]) });
  }
  const last = figures.reps.at(-1);
  log(
    `python: host ${figures.versions.host} ${last?.host.toFixed(3)} s, image ${figures.versions.image} ${last?.image.toFixed(3)} s`,
  );
  return figures;
}
