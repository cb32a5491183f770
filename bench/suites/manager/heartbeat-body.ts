import type { HeartbeatRequest } from '@ray-agent/protocol';

/** What every simulated provider reports: one busy Ray node of a typical size. */
export const typicalHeartbeat = (): Omit<HeartbeatRequest, 'providerId' | 'sentAt' | 'bootId'> => ({
  state: 'contributing',
  rayNode: 'joined',
  cpuPercent: 3.5,
  memoryBytes: 412_000_000,
  memoryPercent: 9.6,
  activeTasks: 1,
  recentErrors: [],
});
