import {
  KEEPALIVE_SECONDS,
  TUNNEL_HANDSHAKE_STALE_AFTER_SECONDS,
  TUNNEL_NO_HANDSHAKE_AFTER_SECONDS,
  TUNNEL_SILENT_AFTER_SECONDS,
  type TunnelState,
} from '@ray-agent/protocol';

/** What the loop knows about the tunnel since it was last configured (a new config or a restarted daemon resets it). */
export interface TunnelObservation {
  configuredAtMs: number;
  /** Unix seconds of the latest handshake; 0 = none yet. */
  latestHandshake: number;
  rxBytes: number;
  /** When rxBytes last grew (keepalives arrive every KEEPALIVE_SECONDS while the path works). */
  rxChangedAtMs: number | null;
  /** A handshake happened since this configuration. */
  wasUp: boolean;
}

/** Seconds since the latest handshake, or null when there was none. */
function handshakeAgeSeconds(observed: TunnelObservation, nowMs: number): number | null {
  return observed.latestHandshake > 0 ? nowMs / 1000 - observed.latestHandshake : null;
}

/** Up: a live session (a handshake WireGuard still honours) and bytes arriving. */
export function tunnelState(observed: TunnelObservation, nowMs: number): TunnelState {
  const sinceRx = observed.rxChangedAtMs === null ? Number.POSITIVE_INFINITY : nowMs - observed.rxChangedAtMs;
  const age = handshakeAgeSeconds(observed, nowMs);
  if (age !== null && age < TUNNEL_HANDSHAKE_STALE_AFTER_SECONDS && sinceRx < TUNNEL_SILENT_AFTER_SECONDS * 1000)
    return 'up';
  if (observed.wasUp) return 'silent';
  return nowMs - observed.configuredAtMs < TUNNEL_NO_HANDSHAKE_AFTER_SECONDS * 1000 ? 'connecting' : 'unreachable';
}

/** The sentence for a state that needs one: what is wrong and what fixes it. */
export function tunnelProblem(
  state: TunnelState,
  endpoint: string,
  observed?: TunnelObservation,
  nowMs = Date.now(),
): string | null {
  const port = endpoint.slice(endpoint.lastIndexOf(':') + 1);
  const age = observed ? handshakeAgeSeconds(observed, nowMs) : null;
  const receiving =
    observed?.rxChangedAtMs !== null &&
    observed?.rxChangedAtMs !== undefined &&
    nowMs - observed.rxChangedAtMs < TUNNEL_SILENT_AFTER_SECONDS * 1000;
  if (state === 'silent' && age !== null && age >= TUNNEL_HANDSHAKE_STALE_AFTER_SECONDS && receiving)
    return (
      `no handshake with the gateway at ${endpoint} for ${Math.round(age)} s although its keepalives arrive: outbound ` +
      `UDP to port ${port} is probably blocked by a firewall that lets only replies in; it reconnects by itself once ` +
      'that UDP passes'
    );
  if (state === 'unreachable')
    return (
      `no answer from the gateway at ${endpoint} for ${TUNNEL_NO_HANDSHAKE_AFTER_SECONDS} s: outbound UDP to port ${port} ` +
      'may be blocked by a firewall, or the endpoint is wrong; the gateway admits this machine only once the manager ' +
      'has registered it'
    );
  if (state === 'silent')
    return (
      `nothing has arrived from the gateway at ${endpoint} for more than ${TUNNEL_SILENT_AFTER_SECONDS} s although it ` +
      `sends a keepalive every ${KEEPALIVE_SECONDS} s: the network path or the gateway is down, or the manager revoked ` +
      'this machine; it reconnects by itself once the gateway answers again'
    );
  return null;
}
