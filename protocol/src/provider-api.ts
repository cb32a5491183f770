import { z } from 'zod';
import { AgentState, RayNodeState } from './agent-state.js';
import { Limits, Sentence, Timestamp, Versions } from './common.js';
import { ClusterAccess, TunnelReport, WireguardKey } from './overlay.js';

/** Provider IDs are chosen by the manager; the agent only checks they are safe to put in a Ray label. */
export const ProviderId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{2,62}$/, 'provider IDs are 3-63 lowercase letters, digits and dashes');

/** A provider credential as the manager issues it (base64url of 32 random bytes, with room to grow). */
export const ProviderCredential = z.string().min(32).max(256);

/**
 * POST /api/register, authorized by the enrollment token. Idempotent per installId. Registering an installId the
 * manager already knows issues a new credential only with proof: `currentCredential` is that provider's current
 * credential, or the enrollment token is the one that registered it last (a retry after a lost answer).
 * Otherwise the answer is 409 `install_id_taken`. A provider the operator revoked stays revoked: its installId gets
 * 409 `install_id_taken` whatever it proves (a machine let in again needs a new state volume, so a new installId).
 */
export const RegisterRequest = z.object({
  installId: z.uuid(),
  hostname: z.string().min(1).max(253),
  cpuCores: z.number().int().positive().max(4096),
  memoryBytes: z.number().int().positive(),
  ipAddress: z.string().min(1).max(64),
  versions: Versions,
  limits: Limits,
  /** The credential this agent holds for its provider, sent when it registers again. */
  currentCredential: ProviderCredential.optional(),
  /** The public key of this provider's tunnel container; without it the manager answers direct mode. */
  wireguardPublicKey: WireguardKey.optional(),
});
export type RegisterRequest = z.infer<typeof RegisterRequest>;

export const RegisterResponse = z.object({
  providerId: ProviderId,
  /** Bearer credential for heartbeats; only ever stored in the agent's state volume. */
  credential: ProviderCredential,
  heartbeatIntervalSeconds: z.number().int().min(1).max(3600),
  serverTime: Timestamp,
  /** How to join: over the overlay or directly, with Ray's token or without. Absent from managers before the overlay. */
  cluster: ClusterAccess.optional(),
});
export type RegisterResponse = z.infer<typeof RegisterResponse>;

/** POST /api/heartbeat, authorized by the provider credential. */
export const HeartbeatRequest = z.object({
  providerId: ProviderId,
  /** Random per agent start: two agents heartbeating with one identity show as two boot IDs. */
  bootId: z.uuid(),
  state: AgentState,
  rayNode: RayNodeState,
  /** Container CPU use as a percentage of the CPU limit (0-100). */
  cpuPercent: z.number().min(0).max(100),
  memoryBytes: z.number().int().nonnegative(),
  /** Container memory use as a percentage of the memory limit (0-100). */
  memoryPercent: z.number().min(0).max(100),
  activeTasks: z.number().int().nonnegative(),
  recentErrors: z.array(Sentence).max(5),
  sentAt: Timestamp,
  /** The tunnel container's public key now: a new one (the tunnel volume was replaced) rotates the key. */
  wireguardPublicKey: WireguardKey.optional(),
  tunnel: TunnelReport.optional(),
});
export type HeartbeatRequest = z.infer<typeof HeartbeatRequest>;

/**
 * The identity lease: a boot (one agent process, one `bootId`) holds its provider's identity while its heartbeats
 * keep coming. Another boot is refused with 409 `identity_in_use` and a Retry-After until the holder's last heartbeat
 * is this many intervals old, or the holder said `stopped`; then the newest boot wins. Two intervals: a live agent
 * heartbeats every interval, so a copy never wins, and a restarted container waits at most two intervals.
 */
export const IDENTITY_LEASE_INTERVALS = 2;

/** How long a boot keeps its provider's identity after its last accepted heartbeat, in milliseconds. */
export function identityLeaseMs(heartbeatIntervalSeconds: number): number {
  return IDENTITY_LEASE_INTERVALS * heartbeatIntervalSeconds * 1000;
}

/** The `error.code` of every error answer of the manager API; the agent acts on several of them. */
export const ApiErrorCode = {
  invalidRequest: 'invalid_request',
  payloadTooLarge: 'payload_too_large',
  unsupportedMediaType: 'unsupported_media_type',
  notFound: 'not_found',
  internalError: 'internal_error',
  enrollmentTokenRejected: 'enrollment_token_rejected',
  credentialRejected: 'credential_rejected',
  adminTokenRejected: 'admin_token_rejected',
  unknownProvider: 'unknown_provider',
  /** 409 on heartbeat, with Retry-After: another boot holds the identity lease. */
  identityInUse: 'identity_in_use',
  /** 409 on register: the installId is registered and the request brought no proof of owning it, or was revoked. */
  installIdTaken: 'install_id_taken',
  /** 429, with Retry-After. */
  rateLimited: 'rate_limited',
  /** 401 on gateway sync: the gateway token is missing or wrong. */
  gatewayTokenRejected: 'gateway_token_rejected',
  /** 404 on gateway sync: this manager runs without a gateway (no --gateway-token-file). */
  noGateway: 'no_gateway',
  /** 409 on register or heartbeat: another live provider holds this WireGuard key (two installs share a tunnel volume). */
  wireguardKeyInUse: 'wireguard_key_in_use',
  /** 503 on register: every address of the overlay network is taken; the operator must widen it or revoke providers. */
  overlayFull: 'overlay_full',
} as const;
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

export const HeartbeatResponse = z.object({
  ok: z.literal(true),
  heartbeatIntervalSeconds: z.number().int().min(1).max(3600),
  serverTime: Timestamp,
  /** The current way in, on every answer: a moved gateway, a new gateway key or a new Ray token reach the agent. */
  cluster: ClusterAccess.optional(),
});
export type HeartbeatResponse = z.infer<typeof HeartbeatResponse>;

/**
 * POST /api/deregister, authorized by the provider's own credential (Bearer): the provider leaves for good (the
 * person chose "Leave this cluster"). The manager forgets its overlay peer at the next gateway sync and answers
 * 401 to that credential from then on; the listing keeps the provider with `leftAt` set. Answered 200 with this body;
 * a second call with the same credential gets 401, so a retry after a lost answer reads as "already gone".
 */
export const DEREGISTER_PATH = '/api/deregister';
export const DeregisterResponse = z.object({ ok: z.literal(true), providerId: z.string(), leftAt: Timestamp });
export type DeregisterResponse = z.infer<typeof DeregisterResponse>;

export const ProviderHealth = z.enum(['healthy', 'late', 'offline', 'stopped', 'never', 'left']);
export type ProviderHealth = z.infer<typeof ProviderHealth>;

/** GET /api/providers, authorized by the operator's admin token. */
export const ProviderSummary = z.object({
  providerId: ProviderId,
  hostname: z.string(),
  ipAddress: z.string(),
  cpuCores: z.number().int(),
  memoryBytes: z.number().int(),
  limits: Limits,
  versions: Versions,
  registeredAt: Timestamp,
  registrations: z.number().int().positive(),
  lastHeartbeatAt: Timestamp.nullable(),
  heartbeats: z.number().int().nonnegative(),
  lastState: AgentState.nullable(),
  activeTasks: z.number().int().nonnegative(),
  cpuPercent: z.number().nullable(),
  memoryBytesUsed: z.number().int().nullable(),
  health: ProviderHealth,
  /** Set once the provider was revoked (`providers revoke`): its credential and its overlay peer are gone. */
  revokedAt: Timestamp.nullable(),
  /** Set once the provider deregistered itself (POST /api/deregister). Optional: older managers lack it. */
  leftAt: Timestamp.nullable().optional(),
  /** The overlay address the provider holds (kept once given, also while it runs directly), or null: it never had one. */
  overlayAddress: z.string().nullable(),
  /** The tunnel as the agent last reported it, or null (direct mode or an older agent). */
  tunnel: TunnelReport.nullable(),
  /** The gateway's own view of this provider's peer, or null when the gateway has not seen it. */
  gatewayPeer: z.object({ lastHandshakeAt: Timestamp.nullable(), rxBytes: z.number(), txBytes: z.number() }).nullable(),
});
export type ProviderSummary = z.infer<typeof ProviderSummary>;

/**
 * GET /api/providers is paginated by keyset: providers in registration order (registeredAt, then providerId: a key
 * that never changes), at most `limit` a page. `after` is the providerId of the last provider of the previous page
 * (the answer's `nextAfter`); a provider registered meanwhile lands at the end, so a walk never skips or repeats one.
 */
export const PROVIDER_PAGE_DEFAULT = 500;
export const PROVIDER_PAGE_MAX = 1000;

export const ProviderListQuery = z.object({
  limit: z.coerce
    .number()
    .int(`limit must be a whole number from 1 to ${PROVIDER_PAGE_MAX}, e.g. limit=${PROVIDER_PAGE_DEFAULT}`)
    .min(1, `limit must be at least 1, e.g. limit=${PROVIDER_PAGE_DEFAULT}`)
    .max(PROVIDER_PAGE_MAX, `limit must be at most ${PROVIDER_PAGE_MAX}, e.g. limit=${PROVIDER_PAGE_DEFAULT}`)
    .default(PROVIDER_PAGE_DEFAULT),
  after: ProviderId.optional(),
});
export type ProviderListQuery = z.infer<typeof ProviderListQuery>;

export const ProviderList = z.object({
  providers: z.array(ProviderSummary),
  /** The `after` of the next page, or null: this page is the last. Optional: managers before pagination lack it. */
  nextAfter: ProviderId.nullable().optional(),
});
export type ProviderList = z.infer<typeof ProviderList>;
