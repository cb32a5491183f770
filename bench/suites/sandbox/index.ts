import { withBenchCluster } from '../../lib/cluster.js';
import type { Suite } from '../../lib/suite.js';
import { sandboxDetails } from './details.js';
import { sandboxFigures } from './figures.js';
import { runSandbox } from './run.js';
import { SandboxData, type SandboxSettings } from './schema.js';

/** Ray's gVisor sandboxes on the agent's node against ordinary Ray work on the same node (issue 12). */
export const suite: Suite<SandboxSettings, SandboxData> = {
  name: 'sandbox',
  inner: true,
  profiles: {
    full: { reps: 6, loops: 3_000_000, blocks: 60_000 },
    quick: { reps: 3, loops: 2_000_000, blocks: 30_000 },
    smoke: { reps: 2, loops: 200_000, blocks: 5_000 },
  },
  data: SandboxData,
  run: (context, settings) => withBenchCluster(context, 'sandbox', (cluster) => runSandbox(cluster, settings)),
  figuresOf: sandboxFigures,
  details: sandboxDetails,
};
