import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { GcsAddress } from '../config/ray-head.js';
import { formatGcsAddress } from '../config/ray-head.js';
import { rayAuthEnvironment } from './auth-environment.js';

const ClusterInfo = z.object({
  status: z.enum(['ok', 'unreachable']),
  detail: z.string().optional(),
  rayVersion: z.string().nullable(),
  pythonVersion: z.string(),
  clusterRayVersion: z.string().nullable().optional(),
  clusterPythonVersion: z.string().nullable().optional(),
  /** The GCS's cluster ID: a head restarted without fault tolerance gets a new one, orphaning older nodes. */
  clusterId: z.string().nullable().optional(),
});
export type ClusterInfo = z.infer<typeof ClusterInfo>;

export type Preflight =
  | { kind: 'ok'; info: ClusterInfo }
  | { kind: 'unreachable'; detail: string }
  | { kind: 'mismatch'; message: string; info: ClusterInfo };

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'cluster_info.py');

/**
 * Asks the head's GCS for the cluster's Ray and Python versions and compares them with ours. A cluster with Ray's
 * token authentication answers only with the token: `rayAuthTokenFile` names it, as for the node.
 */
export async function preflightCluster(
  python: string,
  gcs: GcsAddress,
  timeoutSeconds: number,
  rayAuthTokenFile?: string,
): Promise<Preflight> {
  const env = rayAuthEnvironment({ ...process.env, RAY_USAGE_STATS_ENABLED: '0' }, rayAuthTokenFile);
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      python,
      [SCRIPT, formatGcsAddress(gcs), String(timeoutSeconds)],
      { timeout: (timeoutSeconds + 20) * 1000, env },
      (error, stdout, stderr) => (error ? reject(new Error(lastLine(stderr) || error.message)) : resolve(stdout)),
    );
  }).catch((error: Error) =>
    JSON.stringify({ status: 'unreachable', detail: error.message, rayVersion: null, pythonVersion: '' }),
  );
  const info = ClusterInfo.parse(JSON.parse(lastLine(output)));
  if (info.status === 'unreachable') return { kind: 'unreachable', detail: info.detail ?? 'unreachable' };
  const mismatch = versionMismatch(info);
  return mismatch ? { kind: 'mismatch', message: mismatch, info } : { kind: 'ok', info };
}

/** Ray must match exactly; Python by major.minor (the node runs with RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL=minor). */
export function versionMismatch(
  info: Pick<ClusterInfo, 'rayVersion' | 'pythonVersion' | 'clusterRayVersion' | 'clusterPythonVersion'>,
): string | undefined {
  if (info.clusterRayVersion && info.rayVersion !== info.clusterRayVersion)
    return `the cluster runs Ray ${info.clusterRayVersion} but this agent has Ray ${info.rayVersion}; use the agent image built for Ray ${info.clusterRayVersion}`;
  const minor = (version: string | null | undefined) => version?.split('.').slice(0, 2).join('.');
  if (info.clusterPythonVersion && minor(info.clusterPythonVersion) !== minor(info.pythonVersion))
    return `the cluster runs Python ${info.clusterPythonVersion} but this agent has Python ${info.pythonVersion}; Ray needs the same Python minor version on every node`;
  return undefined;
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}
