import {
  TUNNEL_HANDSHAKE_STALE_AFTER_SECONDS,
  TUNNEL_NO_HANDSHAKE_AFTER_SECONDS,
  TUNNEL_SILENT_AFTER_SECONDS,
} from '@ray-agent/protocol';
import { describe, expect, it } from 'vitest';
import { tunnelProblem, tunnelState } from '../src/tunnel-state.js';

const T0 = 1_800_000_000_000;
const fresh = { configuredAtMs: T0, latestHandshake: 0, rxBytes: 0, rxChangedAtMs: null, wasUp: false };

describe('tunnelState', () => {
  it('connecting until the no-handshake limit, then unreachable', () => {
    expect(tunnelState(fresh, T0 + 1_000)).toBe('connecting');
    expect(tunnelState(fresh, T0 + TUNNEL_NO_HANDSHAKE_AFTER_SECONDS * 1000 - 1)).toBe('connecting');
    expect(tunnelState(fresh, T0 + TUNNEL_NO_HANDSHAKE_AFTER_SECONDS * 1000)).toBe('unreachable');
  });

  it('up while bytes keep arriving; silent once they stop for the silent limit', () => {
    const up = { ...fresh, latestHandshake: T0 / 1000 + 2, rxBytes: 92, rxChangedAtMs: T0 + 2_000, wasUp: true };
    expect(tunnelState(up, T0 + 3_000)).toBe('up');
    expect(tunnelState(up, T0 + 2_000 + TUNNEL_SILENT_AFTER_SECONDS * 1000 - 1)).toBe('up');
    expect(tunnelState(up, T0 + 2_000 + TUNNEL_SILENT_AFTER_SECONDS * 1000)).toBe('silent');
  });

  it('a handshake older than WireGuard honours is not up, although keepalives still arrive (outbound UDP blocked)', () => {
    const handshakeAt = T0 / 1000;
    const now = T0 + TUNNEL_HANDSHAKE_STALE_AFTER_SECONDS * 1000;
    // Bytes arrived a second ago: the gateway's keepalives get through, nothing of ours does.
    const oneWay = { ...fresh, latestHandshake: handshakeAt, rxBytes: 9_000, rxChangedAtMs: now - 1_000, wasUp: true };
    expect(tunnelState(oneWay, now - 1_000)).toBe('up');
    expect(tunnelState(oneWay, now)).toBe('silent');
    expect(tunnelProblem('silent', 'gateway.my-cluster.org:51820', oneWay, now)).toBe(
      `no handshake with the gateway at gateway.my-cluster.org:51820 for ${TUNNEL_HANDSHAKE_STALE_AFTER_SECONDS} s ` +
        'although its keepalives arrive: outbound UDP to port 51820 is probably blocked by a firewall that lets only ' +
        'replies in; it reconnects by itself once that UDP passes',
    );
    // Nothing arrives either: the general sentence.
    const dead = { ...oneWay, rxChangedAtMs: now - TUNNEL_SILENT_AFTER_SECONDS * 1000 };
    expect(tunnelProblem('silent', 'gateway.my-cluster.org:51820', dead, now)).toMatch(/nothing has arrived/);
  });

  it('the problem sentences name the endpoint, the port and the fix', () => {
    expect(tunnelProblem('unreachable', 'gateway.my-cluster.org:51820')).toBe(
      'no answer from the gateway at gateway.my-cluster.org:51820 for 20 s: outbound UDP to port 51820 may be blocked ' +
        'by a firewall, or the endpoint is wrong; the gateway admits this machine only once the manager has registered it',
    );
    expect(tunnelProblem('silent', 'gateway.my-cluster.org:51820')).toMatch(
      /nothing has arrived .* reconnects by itself/,
    );
    expect(tunnelProblem('up', 'gateway.my-cluster.org:51820')).toBeNull();
    expect(tunnelProblem('connecting', 'gateway.my-cluster.org:51820')).toBeNull();
  });
});
