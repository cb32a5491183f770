import { join } from 'node:path';
import { BenchCluster } from '../../lib/cluster.js';
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
  async run(context, settings) {
    if (!context.holder) throw new Error('the nodes suite runs in the loopback-only namespace (inner: true)');
    const cluster = new BenchCluster(context.runId, context.holder, context.imageId, join(context.tmp, 'nodes'));
    try {
      await cluster.start();
      return await runNodes(cluster, settings, context.imageId);
    } finally {
      await cluster.stop();
    }
  },
  figuresOf,
  details,
};
