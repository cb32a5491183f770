import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { formatGcsAddress, type GcsAddress } from '../config/ray-head.js';
import { rayAuthEnvironment } from './auth-environment.js';

/** Which node is this agent's, as the GCS knows it: its provider label, pinned node-manager port, and IP. */
export interface OwnNode {
  python: string;
  gcs: GcsAddress;
  rayAuthTokenFile: string | undefined;
  providerId: string;
  nodeManagerPort: number;
  nodeIp: string | undefined;
}

const Outcome = z.object({
  ok: z.boolean(),
  nodeId: z.string().optional(),
  detail: z.string().nullable().optional(),
  total: z.record(z.string(), z.number()).optional(),
});
export type NodeControlOutcome = z.infer<typeof Outcome>;

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'node_control.py');
const TIMEOUT_SECONDS = 10;

/** Ray 2.58's live resize of a node's logical resources (what KubeRay's in-place pod resize uses). */
export function resizeNode(node: OwnNode, cpus: number, memoryBytes: number): Promise<NodeControlOutcome> {
  return call(node, ['resize', String(cpus), String(memoryBytes)]);
}

/** Ray's own drain, reason preemption, with an absolute deadline (Unix ms). */
export function drainNode(node: OwnNode, deadlineMs: number, message: string): Promise<NodeControlOutcome> {
  return call(node, ['drain', String(Math.round(deadlineMs)), message]);
}

async function call(node: OwnNode, args: string[]): Promise<NodeControlOutcome> {
  const env = rayAuthEnvironment({ ...process.env, RAY_USAGE_STATS_ENABLED: '0' }, node.rayAuthTokenFile);
  const argv = [
    SCRIPT,
    formatGcsAddress(node.gcs),
    String(TIMEOUT_SECONDS),
    node.providerId,
    String(node.nodeManagerPort),
    node.nodeIp ?? '-',
    ...args,
  ];
  const output = await new Promise<string>((resolve) => {
    // Python's start (importing Ray) takes seconds on a loaded machine: allow for it beyond the GCS timeout.
    execFile(node.python, argv, { timeout: (TIMEOUT_SECONDS + 30) * 1000, env }, (error, stdout, stderr) => {
      const last = lastLine(stdout);
      if (last.startsWith('{')) resolve(last);
      else resolve(JSON.stringify({ ok: false, detail: lastLine(stderr) || error?.message || 'no output' }));
    });
  });
  try {
    return Outcome.parse(JSON.parse(output));
  } catch {
    return {
      ok: false,
      detail: `node_control.py answered with something else than its JSON line: ${output.slice(0, 200)}`,
    };
  }
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}
