import { GATEWAY_SYNC_SECONDS } from '@ray-agent/protocol';

/** At most `max` requests per key in each window of `windowSeconds`; `max` 0 turns the limit off. */
export interface RateLimit {
  max: number;
  windowSeconds: number;
}

/**
 * The manager's request limits. They are set far above what a correct agent does (one registration per install,
 * again only after losing its provider; one heartbeat per interval, a refused copy one per Retry-After) and far
 * below a hot loop, which runs at round-trip speed (hundreds a second). Per client counts every request from an
 * address before anything else is read. Per provider counts heartbeats only once their credential checked out, so
 * a stranger cannot use up a provider's budget; per install counts registrations that carried a valid enrollment
 * token.
 */
export interface RateLimits {
  /** Registrations from one client address (a fleet behind one NAT registers at once when it is rolled out). */
  registerPerClient: RateLimit;
  /** Registrations of one installId. */
  registerPerInstall: RateLimit;
  /** Heartbeats from one client address: many agents behind one NAT. */
  heartbeatPerClient: RateLimit;
  /** Heartbeats of one provider (by providerId). */
  heartbeatPerProvider: RateLimit;
  /** Gateway syncs from one client address: the gateway syncs every GATEWAY_SYNC_SECONDS, and again on each restart. */
  gatewaySyncPerClient: RateLimit;
}

export const RATE_LIMIT_WINDOWS_SECONDS = {
  registerPerClient: 60,
  registerPerInstall: 3600,
  heartbeatPerClient: 60,
  heartbeatPerProvider: 60,
  gatewaySyncPerClient: 60,
} as const satisfies Record<keyof RateLimits, number>;

/**
 * The least heartbeats a minute a provider's limit may allow: twice the cadence of a correct agent (one an
 * interval, plus a copy retrying once per Retry-After, which is never sooner than an interval).
 */
export function minHeartbeatsPerMinute(heartbeatIntervalSeconds: number): number {
  return 2 * Math.ceil(60 / heartbeatIntervalSeconds);
}

/** The least gateway syncs a minute the limit may allow: twice the gateway's cadence (a restart syncs at once). */
export const MIN_GATEWAY_SYNCS_PER_MINUTE = 2 * Math.ceil(60 / GATEWAY_SYNC_SECONDS);

/**
 * The defaults: 30 registrations a minute per client, 10 an hour per install, 1200 heartbeats a minute per client,
 * 60 a minute per provider (6 times the cadence at the default 10 s interval; 4 times it at intervals under 4 s),
 * and 300 gateway syncs a minute per client (10 times the gateway's cadence: a few gateways behind one address fit).
 */
export function defaultRateLimits(heartbeatIntervalSeconds: number): RateLimits {
  return {
    registerPerClient: { max: 30, windowSeconds: RATE_LIMIT_WINDOWS_SECONDS.registerPerClient },
    registerPerInstall: { max: 10, windowSeconds: RATE_LIMIT_WINDOWS_SECONDS.registerPerInstall },
    heartbeatPerClient: { max: 1200, windowSeconds: RATE_LIMIT_WINDOWS_SECONDS.heartbeatPerClient },
    heartbeatPerProvider: {
      max: Math.max(60, 2 * minHeartbeatsPerMinute(heartbeatIntervalSeconds)),
      windowSeconds: RATE_LIMIT_WINDOWS_SECONDS.heartbeatPerProvider,
    },
    gatewaySyncPerClient: { max: 300, windowSeconds: RATE_LIMIT_WINDOWS_SECONDS.gatewaySyncPerClient },
  };
}

/** "a minute", "an hour", "every 90 s": a limit's window as it reads in a message. */
export function windowPhrase(windowSeconds: number): string {
  if (windowSeconds === 60) return 'a minute';
  if (windowSeconds === 3600) return 'an hour';
  return `every ${windowSeconds} s`;
}
