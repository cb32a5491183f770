import type { AgentState, ProviderHealth } from '@ray-agent/protocol';

/** A provider is healthy while its last heartbeat is at most this many intervals old. */
export const HEALTHY_INTERVALS = 3;
/** ... late while at most this many intervals old, and offline after. */
export const LATE_INTERVALS = 10;

/**
 * Health of a provider as the operator should see it, from its last heartbeat only.
 * `now` is injected so the rule can be tested without waiting.
 */
export function deriveHealth(
  lastHeartbeatAt: Date | null,
  lastState: AgentState | null,
  heartbeatIntervalSeconds: number,
  now: Date,
): ProviderHealth {
  if (lastHeartbeatAt === null) return 'never';
  if (lastState === 'stopped') return 'stopped';
  const ageMs = now.getTime() - lastHeartbeatAt.getTime();
  const intervalMs = heartbeatIntervalSeconds * 1000;
  if (ageMs <= HEALTHY_INTERVALS * intervalMs) return 'healthy';
  if (ageMs <= LATE_INTERVALS * intervalMs) return 'late';
  return 'offline';
}
