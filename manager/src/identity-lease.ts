import { identityLeaseMs } from '@ray-agent/protocol';

/** What the store knows about the boot that holds a provider's identity. */
export interface LeaseHolder {
  bootId: string | null;
  lastState: string | null;
  /** When the manager accepted that boot's last heartbeat (ISO-8601). */
  lastHeartbeatAt: string | null;
}

export type IdentityDecision =
  | {
      kind: 'accepted';
      /** Why this boot may heartbeat; anything but `same_boot` makes it the holder. */
      reason: 'same_boot' | 'first_boot' | 'holder_stopped' | 'lease_expired';
      previousBootId: string | null;
    }
  | { kind: 'held'; holderBootId: string; retryAfterSeconds: number };

/**
 * The identity lease rule (see IDENTITY_LEASE_INTERVALS in the protocol). A boot other than the holder is accepted
 * once the holder said `stopped` or its last heartbeat is a lease old: a killed container's restart comes back by
 * itself, while a copy running next to a live original is refused every time, since the original renews the lease
 * every interval. A superseded boot is just another boot: refused while the new holder keeps heartbeating.
 */
export function decideIdentity(
  holder: LeaseHolder,
  bootId: string,
  heartbeatIntervalSeconds: number,
  now: Date,
): IdentityDecision {
  if (holder.bootId === bootId) return { kind: 'accepted', reason: 'same_boot', previousBootId: bootId };
  if (holder.bootId === null || holder.lastHeartbeatAt === null)
    return { kind: 'accepted', reason: 'first_boot', previousBootId: holder.bootId };
  if (holder.lastState === 'stopped')
    return { kind: 'accepted', reason: 'holder_stopped', previousBootId: holder.bootId };
  const leaseMs = identityLeaseMs(heartbeatIntervalSeconds);
  const remainingMs = Date.parse(holder.lastHeartbeatAt) + leaseMs - now.getTime();
  if (!(remainingMs > 0)) return { kind: 'accepted', reason: 'lease_expired', previousBootId: holder.bootId };
  // Whole seconds, at least 1; never more than a lease, even if the clock stepped back.
  const retryAfterSeconds = Math.min(Math.ceil(leaseMs / 1000), Math.max(1, Math.ceil(remainingMs / 1000)));
  return { kind: 'held', holderBootId: holder.bootId, retryAfterSeconds };
}
