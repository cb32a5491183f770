import type { ClusterAccess, HeartbeatRequest } from '@ray-agent/protocol';
import type { Logger } from '../log.js';
import type { StatusModel } from '../status/status-model.js';
import { Backoff, sleep } from '../supervisor/backoff.js';
import { type ManagerClient, ManagerError } from './manager-client.js';

export type HeartbeatStop =
  | { kind: 'stopped' | 'revoked' | 'unknown_provider' }
  /** Another boot of this provider holds its identity; the manager says when its lease runs out. */
  | { kind: 'identity_in_use'; retryAfterMs: number | undefined };

/**
 * Sends a heartbeat every interval. Failures back off (capped at 60 s, honouring a capped Retry-After) while Ray
 * keeps running; the first success resets the backoff. A rejected credential, an unknown provider or an identity
 * held by another boot ends the loop so the supervisor can act on it, never retrying in a hot loop. `onAnswer`
 * runs after every other attempt: accepted (with the answer's ClusterAccess, absent from managers before the
 * overlay), or failed in a way worth retrying (the manager down or overloaded).
 */
export async function runHeartbeats(
  client: ManagerClient,
  model: StatusModel,
  credential: () => { providerId: string; credential: string },
  body: () => Omit<HeartbeatRequest, 'providerId' | 'sentAt' | 'bootId'>,
  bootId: string,
  log: Logger,
  signal: AbortSignal,
  backoff = new Backoff(2_000, 60_000),
  onAnswer: (accepted: boolean, cluster?: ClusterAccess) => void = () => {},
): Promise<HeartbeatStop> {
  const beat = model.heartbeat;
  let wait = 0;
  while (!signal.aborted) {
    beat.nextAttemptAt = new Date(Date.now() + wait);
    await sleep(wait, signal);
    if (signal.aborted) break;
    const { providerId, credential: secret } = credential();
    beat.lastAttemptAt = new Date();
    try {
      const sentAt = new Date();
      const { body: answer, date } = await client.heartbeat(
        { ...body(), providerId, bootId, sentAt: sentAt.toISOString() },
        secret,
        signal,
      );
      const serverTime = Date.parse(answer.serverTime);
      beat.serverClockSkewSeconds = Number.isNaN(serverTime)
        ? date
          ? (date.getTime() - sentAt.getTime()) / 1000
          : null
        : Math.round((serverTime - sentAt.getTime()) / 100) / 10;
      if (beat.consecutiveFailures > 0) log.info({ failures: beat.consecutiveFailures }, 'heartbeats recovered');
      beat.state = 'healthy';
      beat.lastSuccessAt = new Date();
      beat.consecutiveFailures = 0;
      beat.failingSince = null;
      beat.intervalSeconds = answer.heartbeatIntervalSeconds;
      model.clearError('heartbeat_failing');
      backoff.reset();
      wait = answer.heartbeatIntervalSeconds * 1000;
      onAnswer(true, answer.cluster);
    } catch (error) {
      if (signal.aborted) break;
      if (!(error instanceof ManagerError)) throw error;
      if (error.kind === 'http' && error.status === 404 && error.code === 'unknown_provider')
        return { kind: 'unknown_provider' };
      if (error.kind === 'http' && error.status === 409 && error.code === 'identity_in_use') {
        beat.state = 'failing';
        beat.consecutiveFailures += 1;
        beat.failingSince ??= new Date();
        return { kind: 'identity_in_use', retryAfterMs: error.retryAfterMs };
      }
      if (error.kind === 'http' && (error.status === 401 || error.status === 403)) {
        beat.state = 'stopped';
        return { kind: 'revoked' };
      }
      beat.consecutiveFailures += 1;
      beat.failingSince ??= new Date();
      beat.state = error.status === 429 ? 'rate_limited' : 'failing';
      if (beat.consecutiveFailures === 1 || beat.consecutiveFailures % 10 === 0)
        log.warn({ err: error.message, status: error.status, failures: beat.consecutiveFailures }, 'heartbeat failed');
      model.fail('heartbeat_failing', `heartbeats are failing: ${error.message}`);
      wait = Math.min(300_000, Math.max(beat.intervalSeconds * 1000, backoff.next(), error.retryAfterMs ?? 0));
      onAnswer(false);
    }
  }
  return { kind: 'stopped' };
}
