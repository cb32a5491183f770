import { z } from 'zod';
import { SECRETS_DIR, STATE_DIR } from './agent-contract.js';
import { Sentence, Timestamp } from './common.js';

/**
 * The WireGuard overlay: a provider behind a NAT dials out to the cluster's gateway, and every Ray port of the
 * provider is reachable only through that tunnel. The manager coordinates: it hands out overlay addresses, tells the
 * gateway which keys to admit, and tells each agent where the gateway is. These are the facts every part shares.
 */

/** A WireGuard key as `wg genkey` / `wg pubkey` print it: base64 of 32 bytes. */
export const WireguardKey = z
  .string()
  .regex(
    /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/,
    'a WireGuard key is 44 base64 characters ending in "=", as `wg pubkey` prints it',
  );
export type WireguardKey = z.infer<typeof WireguardKey>;

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const Ipv4Address = z.string().regex(IPV4, 'an IPv4 address such as 100.96.0.7');
export const Ipv4Cidr = z.string().refine((value) => {
  const [address, prefix, ...rest] = value.split('/');
  return rest.length === 0 && IPV4.test(address ?? '') && /^(\d|[12]\d|3[0-2])$/.test(prefix ?? '');
}, 'an IPv4 network such as 100.96.0.0/16');

/** host:port a provider dials over UDP (a DNS name or an IPv4 address). */
export const UdpEndpoint = z
  .string()
  .max(260)
  .regex(/^[A-Za-z0-9.-]{1,253}:\d{1,5}$/, 'HOST:PORT, such as gateway.my-cluster.org:51820');

/** host:port of the head's GCS as the provider reaches it over the overlay. */
export const GcsAddress = z
  .string()
  .max(260)
  .regex(/^[A-Za-z0-9.-]{1,253}:\d{1,5}$/, 'HOST:PORT, such as 100.96.0.1:6379');

/** The WireGuard interface name on both ends (one per network namespace). */
export const OVERLAY_INTERFACE = 'raywg0';
/** The gateway's default UDP port. */
export const GATEWAY_DEFAULT_PORT = 51820;
/** The overlay the reference manager hands out by default: carrier-grade NAT space, rarely used on home LANs. */
export const DEFAULT_OVERLAY_NETWORK = '100.96.0.0/16';
/** WireGuard's MTU inside a 1500-byte path (1500 - 80 bytes of IPv6+UDP+WireGuard headers). */
export const OVERLAY_MTU = 1420;
/**
 * Both ends send a keepalive after this many idle seconds: it keeps the home router's UDP mapping open, and lets each
 * end notice a dead path from received bytes (WireGuard's own handshake is renewed only every two minutes).
 */
export const KEEPALIVE_SECONDS = 10;
/** No bytes from the gateway for this long, with keepalives on both ends: the path is gone. */
export const TUNNEL_SILENT_AFTER_SECONDS = 3 * KEEPALIVE_SECONDS + 5;
/**
 * WireGuard drops a session's keys 180 s after its handshake (REJECT_AFTER_TIME) and starts a new one every 120 s while
 * both ends send (keepalives count): a handshake older than this means no data passes, even when the gateway's
 * keepalives still arrive (outbound UDP blocked, replies let in).
 */
export const TUNNEL_HANDSHAKE_STALE_AFTER_SECONDS = 180 + 2 * KEEPALIVE_SECONDS;
/** A tunnel that had no handshake for this long after it was configured cannot come up (UDP blocked, wrong endpoint, key refused). */
export const TUNNEL_NO_HANDSHAKE_AFTER_SECONDS = 20;
/** How often the gateway asks the manager for the peers to admit. */
export const GATEWAY_SYNC_SECONDS = 2;

/** What a provider needs to join the overlay; the answer to registration and to every heartbeat. */
export const OverlayConfig = z.object({
  /** This provider's address on the overlay; Ray advertises it (`--node-ip-address`). */
  address: Ipv4Address,
  /** The whole overlay, e.g. 100.96.0.0/16. */
  network: Ipv4Cidr,
  /** The gateway's own address on the overlay. */
  gatewayAddress: Ipv4Address,
  gatewayPublicKey: WireguardKey,
  /** Where the provider sends its UDP, as the gateway's operator published it. */
  gatewayEndpoint: UdpEndpoint,
  /** Networks reached through the tunnel (AllowedIPs of the gateway's peer): the overlay first, then the cluster's. */
  routes: z.array(Ipv4Cidr).min(1).max(32),
  /** The head's GCS over the overlay: the agent joins this instead of RAY_HEAD's address. */
  gcsAddress: GcsAddress,
});
export type OverlayConfig = z.infer<typeof OverlayConfig>;

/** Ray's own token authentication (`RAY_AUTH_MODE=token`): the token the cluster's head was started with. */
export const RayAuthToken = z
  .string()
  .min(16)
  .max(512)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/** How the manager lets this provider in: over the overlay or directly, and with Ray's token or without. */
export const ClusterAccess = z.object({
  /** Null: no gateway (or no key from this agent): join RAY_HEAD directly, as before the overlay existed. */
  overlay: OverlayConfig.nullable(),
  /** Null: the cluster runs without Ray token authentication. A secret: kept like the provider credential. */
  rayAuthToken: RayAuthToken.nullable(),
});
export type ClusterAccess = z.infer<typeof ClusterAccess>;

/**
 * The provider's tunnel, as its tunnel container sees it.
 * - `off`: direct mode (the manager offers no overlay, or there is no tunnel container).
 * - `starting`: the tunnel container has not published its key or its interface yet.
 * - `connecting`: configured, waiting for the first handshake.
 * - `up`: a handshake happened and bytes keep arriving.
 * - `unreachable`: no handshake since it was configured (UDP blocked, a wrong endpoint, or the gateway refuses the key).
 * - `silent`: it was up, and nothing has arrived from the gateway for TUNNEL_SILENT_AFTER_SECONDS.
 * - `error`: the tunnel container cannot make its interface (no /dev/net/tun, no NET_ADMIN).
 */
export const TunnelState = z.enum(['off', 'starting', 'connecting', 'up', 'unreachable', 'silent', 'error']);
export type TunnelState = z.infer<typeof TunnelState>;

/** The tunnel in the status document, in heartbeats and in the operator's provider listing. Never a key. */
export const TunnelReport = z.object({
  state: TunnelState,
  address: Ipv4Address.nullable(),
  gatewayEndpoint: UdpEndpoint.nullable(),
  lastHandshakeAt: Timestamp.nullable(),
  rxBytes: z.number().int().nonnegative(),
  txBytes: z.number().int().nonnegative(),
  /** What is wrong and what fixes it, when the state is not `off`, `connecting` or `up`. */
  problem: Sentence.nullable(),
});
export type TunnelReport = z.infer<typeof TunnelReport>;

// --- The two containers of a provider share these files (and a network namespace) -----------------------------

/** The tunnel container's own volume: its private key (root only), its public key and its status. */
export const TUNNEL_DIR = '/var/lib/ray-agent-tunnel';
/** 0600, root: never leaves the tunnel volume; the agent container mounts the volume read-only and cannot read it. */
export const TUNNEL_PRIVATE_KEY_FILE = `${TUNNEL_DIR}/private.key`;
/** 0644: the agent sends it to the manager at registration. */
export const TUNNEL_PUBLIC_KEY_FILE = `${TUNNEL_DIR}/public.key`;
/** 0644, written atomically by the tunnel loop: a `TunnelStatusFile`. */
export const TUNNEL_STATUS_FILE = `${TUNNEL_DIR}/status.json`;
/** Written atomically by the agent on its state volume (0644; the state volume is 0711): the overlay to bring up. */
export const OVERLAY_CONFIG_FILE = `${STATE_DIR}/overlay.json`;
/** 0600 on the state volume: Ray's token, given to Ray as RAY_AUTH_TOKEN_PATH, never as a variable. */
export const RAY_AUTH_TOKEN_FILE = `${SECRETS_DIR}/ray-auth-token`;

/** What the agent asks of its tunnel container: an overlay to bring up, or none (direct mode: no interface). */
export const OverlayConfigFile = z.object({
  schemaVersion: z.literal(1),
  overlay: OverlayConfig.nullable(),
  writtenAt: Timestamp,
});
export type OverlayConfigFile = z.infer<typeof OverlayConfigFile>;

/** What the tunnel container reports; the agent folds it into its status and heartbeats. */
export const TunnelStatusFile = z.object({
  schemaVersion: z.literal(1),
  report: TunnelReport,
  /** The overlay config (its `writtenAt`) this report is about, so a stale report is not read as the new one. */
  configWrittenAt: Timestamp.nullable(),
  updatedAt: Timestamp,
  /**
   * The tunnel container's network namespace (`/proc/self/ns/net`, e.g. "net:[4026532301]"). An agent container whose
   * own differs was left behind in the namespace of a tunnel container that has since restarted: it exits
   * (ExitCode.tunnelNamespaceGone) so its restart policy starts it again inside the new one.
   */
  networkNamespace: z.string().max(64).nullable().optional(),
});
export type TunnelStatusFile = z.infer<typeof TunnelStatusFile>;

/** The tunnel loop rewrites its status at least this often; an older file means the tunnel container is gone. */
export const TUNNEL_STATUS_EVERY_SECONDS = 2;
export const TUNNEL_STATUS_STALE_AFTER_SECONDS = 15;

// --- Gateway <-> manager ----------------------------------------------------------------------------------------

/** One peer as the gateway sees it, reported back so the operator's listing says what the gateway saw. */
export const GatewayPeerReport = z.object({
  publicKey: WireguardKey,
  lastHandshakeAt: Timestamp.nullable(),
  rxBytes: z.number().int().nonnegative(),
  txBytes: z.number().int().nonnegative(),
});
export type GatewayPeerReport = z.infer<typeof GatewayPeerReport>;

/** POST /api/gateway/sync, authorized by the gateway token (`serve --gateway-token-file`). */
export const GatewaySyncRequest = z.object({
  publicKey: WireguardKey,
  /** What providers dial: the gateway's public address and UDP port. */
  endpoint: UdpEndpoint,
  /** The cluster's networks the gateway routes to, handed to providers after the overlay itself. */
  routes: z.array(Ipv4Cidr).max(30),
  peers: z.array(GatewayPeerReport).max(100_000),
});
export type GatewaySyncRequest = z.infer<typeof GatewaySyncRequest>;

export const GatewayPeer = z.object({
  providerId: z.string(),
  publicKey: WireguardKey,
  /** The provider's overlay address; the gateway admits only this source address from the peer (AllowedIPs /32). */
  address: Ipv4Address,
});
export type GatewayPeer = z.infer<typeof GatewayPeer>;

/** The peers to admit: exactly the providers registered, with a key, and not revoked. Anything else is removed. */
export const GatewaySyncResponse = z.object({
  network: Ipv4Cidr,
  gatewayAddress: Ipv4Address,
  peers: z.array(GatewayPeer),
  syncIntervalSeconds: z.number().int().min(1).max(60),
  serverTime: Timestamp,
});
export type GatewaySyncResponse = z.infer<typeof GatewaySyncResponse>;
