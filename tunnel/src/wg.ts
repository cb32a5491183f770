import type { WireguardKey } from '@ray-agent/protocol';
import type { Commands } from './commands.js';

/** One peer of `wg show IFACE dump`. */
export interface WgPeer {
  publicKey: WireguardKey;
  /** host:port as WireGuard last saw it, or null before any packet or setting. */
  endpoint: string | null;
  allowedIps: string[];
  /** Unix seconds of the latest handshake; 0 = never. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
  /** Seconds; 0 = off. */
  persistentKeepalive: number;
}

export interface WgDump {
  publicKey: WireguardKey | null;
  listenPort: number;
  peers: WgPeer[];
}

/**
 * Parses `wg show IFACE dump`: the interface line (private key, public key, listen port, fwmark), then one line per
 * peer (public key, preshared key, endpoint, allowed ips, latest handshake, rx, tx, persistent keepalive), tab-separated.
 */
export function parseWgDump(text: string): WgDump {
  const lines = text.split('\n').filter((line) => line.length > 0);
  const head = lines.shift()?.split('\t');
  if (head?.length !== 4) throw new Error(`unexpected \`wg show dump\` interface line: ${JSON.stringify(head)}`);
  const peers = lines.map((line): WgPeer => {
    const fields = line.split('\t');
    if (fields.length !== 8) throw new Error(`unexpected \`wg show dump\` peer line: ${JSON.stringify(line)}`);
    const [publicKey, , endpoint, allowedIps, handshake, rx, tx, keepalive] = fields as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    return {
      publicKey,
      endpoint: endpoint === '(none)' ? null : endpoint,
      allowedIps: allowedIps === '(none)' ? [] : allowedIps.split(','),
      latestHandshake: Number(handshake),
      rxBytes: Number(rx),
      txBytes: Number(tx),
      persistentKeepalive: keepalive === 'off' ? 0 : Number(keepalive),
    };
  });
  return { publicKey: head[1] === '(none)' ? null : (head[1] ?? null), listenPort: Number(head[2]), peers };
}

export function wgDump(commands: Commands, iface: string): Promise<WgDump> {
  return commands.run('wg', ['show', iface, 'dump']).then(parseWgDump);
}

/** `wg` reads the private key from its 0600 file: the key is never on a command line other processes can read. */
export function wgSetInterface(
  commands: Commands,
  iface: string,
  privateKeyFile: string,
  listenPort?: number,
): Promise<string> {
  const port = listenPort === undefined ? [] : ['listen-port', String(listenPort)];
  return commands.run('wg', ['set', iface, ...port, 'private-key', privateKeyFile]);
}

export interface PeerSetting {
  publicKey: WireguardKey;
  allowedIps: readonly string[];
  persistentKeepalive: number;
  /** host:port; a DNS name is resolved by `wg` now, so setting it again re-resolves it. */
  endpoint?: string;
}

/** Adds or updates a peer; allowed-ips replaces the peer's whole list. */
export function wgSetPeer(commands: Commands, iface: string, peer: PeerSetting): Promise<string> {
  const endpoint = peer.endpoint === undefined ? [] : ['endpoint', peer.endpoint];
  return commands.run('wg', [
    'set',
    iface,
    'peer',
    peer.publicKey,
    ...endpoint,
    'persistent-keepalive',
    String(peer.persistentKeepalive),
    'allowed-ips',
    peer.allowedIps.join(','),
  ]);
}

export function wgRemovePeer(commands: Commands, iface: string, publicKey: WireguardKey): Promise<string> {
  return commands.run('wg', ['set', iface, 'peer', publicKey, 'remove']);
}
