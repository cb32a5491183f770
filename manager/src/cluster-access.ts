import type { ClusterAccess } from '@ray-agent/protocol';
import type { OverlayNetwork } from './overlay-network.js';
import type { GatewayRecord, OverlayPeer } from './store.js';

/** The gateway as `serve` configures it; absent, the manager has no gateway and every provider joins directly. */
export interface GatewayOptions {
  /** The gateway's bearer token for POST /api/gateway/sync, in clear (from --gateway-token-file, never stored). */
  token: string;
  network: OverlayNetwork;
  /** The head's GCS port at the gateway's overlay address. */
  gcsPort: number;
}

/**
 * How a provider joins: over the overlay only when the manager has a gateway, the gateway has synced at least once
 * (its key and endpoint are known) and the provider has a key and an address; directly otherwise.
 */
export function clusterAccess(
  gateway: GatewayOptions | undefined,
  record: GatewayRecord | null,
  peer: OverlayPeer | null,
  rayAuthToken: string | undefined,
): ClusterAccess {
  const overlay =
    gateway === undefined || record === null || peer === null
      ? null
      : {
          address: peer.address,
          network: gateway.network.cidr,
          gatewayAddress: gateway.network.gatewayAddress,
          gatewayPublicKey: record.publicKey,
          gatewayEndpoint: record.endpoint,
          // The overlay first, then the cluster's own networks (once each).
          routes: [gateway.network.cidr, ...record.routes.filter((route) => route !== gateway.network.cidr)],
          gcsAddress: `${gateway.network.gatewayAddress}:${gateway.gcsPort}`,
        };
  return { overlay, rayAuthToken: rayAuthToken ?? null };
}
