import { withBenchCluster } from '../../lib/cluster.js';
import type { Suite } from '../../lib/suite.js';
import { details } from './details.js';
import { figuresOf } from './figures.js';
import { runLimits } from './run.js';
import { LimitsData, type LimitsSettings } from './schema.js';

const base = { cpuLimits: [1, 1.5], memoryLimitMiB: 2048, memoryTaskMiB: 3072, spillObjectMiB: 100 };

/** What the person's limits really do: memory beyond the limit, CPU quotas and the host, the scale of work. */
export const suite: Suite<LimitsSettings, LimitsData> = {
  name: 'limits',
  inner: true,
  profiles: {
    full: {
      ...base,
      cpuReps: 5,
      cpuSeconds: 20,
      memoryReps: 3,
      spillObjects: 12,
      scaleReps: 3,
      tinyTasks: 100_000,
      largeMiB: 1024,
      churnActors: 100,
      churnTasks: 200,
    },
    quick: {
      ...base,
      cpuReps: 3,
      cpuSeconds: 10,
      memoryReps: 2,
      spillObjects: 12,
      scaleReps: 2,
      tinyTasks: 20_000,
      largeMiB: 1024,
      churnActors: 30,
      churnTasks: 60,
    },
    smoke: {
      ...base,
      cpuReps: 2,
      cpuSeconds: 4,
      memoryReps: 1,
      memoryLimitMiB: 1024,
      memoryTaskMiB: 1536,
      spillObjects: 8,
      spillObjectMiB: 64,
      scaleReps: 1,
      tinyTasks: 2_000,
      largeMiB: 128,
      churnActors: 5,
      churnTasks: 10,
    },
  },
  data: LimitsData,
  run: (context, settings) => withBenchCluster(context, 'limits', (cluster) => runLimits(cluster, settings)),
  figuresOf,
  details,
};
