import { withBenchCluster } from '../../lib/cluster.js';
import type { Suite } from '../../lib/suite.js';
import { details } from './details.js';
import { figuresOf } from './figures.js';
import { runNodes } from './run.js';
import { NodesData } from './schema.js';
import { type NodesSettings, PROFILES } from './settings.js';

/** The agent container against a plain Ray container from the same image and recipe, alive side by side. */
export const suite: Suite<NodesSettings, NodesData> = {
  name: 'nodes',
  inner: true,
  profiles: PROFILES,
  data: NodesData,
  run: (context, settings) =>
    withBenchCluster(context, 'nodes', (cluster) => runNodes(cluster, settings, context.imageId)),
  figuresOf,
  details,
};
