import { TUNNEL_STATUS_STALE_AFTER_SECONDS, type TunnelReport, type TunnelStatusFile } from '@ray-agent/protocol';
import type { Read } from './tunnel-files.js';

/** Direct mode: no tunnel. */
export const OFF_REPORT: TunnelReport = {
  state: 'off',
  address: null,
  gatewayEndpoint: null,
  lastHandshakeAt: null,
  rxBytes: 0,
  txBytes: 0,
  problem: null,
};

/**
 * What the tunnel is now, from the tunnel container's last report: a report about an older overlay config is not
 * about the one just written, and a report older than TUNNEL_STATUS_STALE_AFTER_SECONDS means the tunnel container
 * stopped reporting (it is gone, or hangs).
 */
export function currentTunnel(read: Read<TunnelStatusFile>, configWrittenAt: string | null, now: Date): TunnelReport {
  if (!read.ok) return { ...OFF_REPORT, state: 'starting', problem: read.problem };
  const { report, updatedAt } = read.value;
  const ageSeconds = Math.round((now.getTime() - Date.parse(updatedAt)) / 1000);
  if (ageSeconds > TUNNEL_STATUS_STALE_AFTER_SECONDS)
    return {
      ...report,
      state: 'error',
      problem: `the tunnel container stopped reporting (its last report is ${ageSeconds} s old); check that it runs (docker ps) and restart it`,
    };
  if (read.value.configWrittenAt !== configWrittenAt)
    return {
      ...report,
      state: 'starting',
      problem: 'the tunnel container has not applied the newest overlay configuration yet',
    };
  return report;
}

/** The sentence the status shows while the tunnel is not up. */
export function tunnelProblem(report: TunnelReport): string {
  if (report.problem) return `the tunnel to the cluster is ${report.state}: ${report.problem}`;
  const gateway = report.gatewayEndpoint ? ` at ${report.gatewayEndpoint}` : '';
  return `waiting for the tunnel to the cluster's gateway${gateway} to come up (state ${report.state})`;
}
