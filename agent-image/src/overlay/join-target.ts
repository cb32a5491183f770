import type { ClusterAccess } from '@ray-agent/protocol';
import { formatGcsAddress, type GcsAddress, parseRayHead } from '../config/ray-head.js';

/** Where and how the Ray node joins: RAY_HEAD's GCS directly, or the head's GCS over the overlay. */
export interface JoinTarget {
  overlay: boolean;
  gcs: GcsAddress;
  /** `--node-ip-address`: the overlay address, or NODE_IP_ADDRESS in direct mode. */
  nodeIpAddress: string | undefined;
  /** RAY_AUTH_TOKEN_PATH when the cluster runs with Ray's token authentication. */
  rayAuthTokenFile: string | undefined;
}

export function joinTarget(
  direct: { gcs: GcsAddress; nodeIpAddress: string | undefined },
  access: ClusterAccess | undefined,
  rayAuthTokenFile: string,
): JoinTarget {
  const tokenFile = access?.rayAuthToken ? rayAuthTokenFile : undefined;
  const overlay = access?.overlay;
  // The contract's GcsAddress is HOST:PORT, which parseRayHead takes as the GCS address itself.
  const gcs = overlay ? parseRayHead(overlay.gcsAddress, 0) : undefined;
  if (!overlay || gcs === undefined || typeof gcs === 'string')
    return { overlay: false, ...direct, rayAuthTokenFile: tokenFile };
  return { overlay: true, gcs, nodeIpAddress: overlay.address, rayAuthTokenFile: tokenFile };
}

/** A node joined for `a` must leave and join again for `b` (a new gateway key or endpoint alone does not count). */
export function needsRejoin(a: JoinTarget, b: JoinTarget): boolean {
  return (
    a.overlay !== b.overlay ||
    formatGcsAddress(a.gcs) !== formatGcsAddress(b.gcs) ||
    a.nodeIpAddress !== b.nodeIpAddress ||
    a.rayAuthTokenFile !== b.rayAuthTokenFile
  );
}
