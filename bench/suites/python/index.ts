import { ensureVenv } from '../../lib/cluster.js';
import type { Suite } from '../../lib/suite.js';
import { pythonDetails } from './details.js';
import { pythonFigures } from './figures.js';
import { runPython } from './run.js';
import { PythonData, type PythonSettings } from './schema.js';

/** The two Pythons the nodes' arms run, timed alone (bench/suites/python/run.ts). */
export const suite: Suite<PythonSettings, PythonData> = {
  name: 'python',
  inner: true,
  profiles: {
    full: { reps: 7, loops: 6_000_000, commandRuns: 5, warmup: 1 },
    quick: { reps: 3, loops: 3_000_000, commandRuns: 3, warmup: 1 },
    smoke: { reps: 2, loops: 500_000, commandRuns: 1, warmup: 0 },
  },
  data: PythonData,
  prepare: async () => {
    await ensureVenv();
  },
  run: runPython,
  figuresOf: pythonFigures,
  details: pythonDetails,
};
