import {
  GATEWAY_SYNC_SECONDS,
  type GatewayPeerReport,
  type GatewaySyncRequest,
  type GatewaySyncResponse,
  KEEPALIVE_SECONDS,
  OVERLAY_MTU,
} from '@ray-agent/protocol';
import { prefixOf } from './cidr.js';
import type { Commands } from './commands.js';
import { applyForwardPolicy, removeForwardPolicy } from './gateway-firewall.js';
import { addrSync, linkSetUp } from './ip.js';
import { ensureKeyPair, type KeyFiles, type KeyPair } from './keys.js';
import type { Logger } from './log.js';
import { type WgDump, wgDump, wgRemovePeer, wgSetInterface, wgSetPeer } from './wg.js';
import { WireguardGo } from './wireguard-go.js';

export interface GatewaySyncer {
  sync(body: GatewaySyncRequest): Promise<GatewaySyncResponse>;
}

export interface GatewayOptions extends KeyFiles {
  manager: GatewaySyncer;
  /** What providers dial (HOST:PORT), told to the manager. */
  endpoint: string;
  listenPort: number;
  /** The cluster's networks providers may reach through the gateway. */
  routes: string[];
  iface: string;
  commands: Commands;
  logger: Logger;
}

/** A start-up failure whose message names the `docker run` flag that fixes it. */
export class GatewayStartError extends Error {
  override name = 'GatewayStartError';
}

/**
 * The cluster's WireGuard hub: admits exactly the peers the manager lists (each only from its own overlay address),
 * and forwards between them and to the cluster's routes. The manager is asked every sync interval; while it cannot be
 * reached the peers stay as they are, so a manager restart does not cut every provider off.
 */
export class GatewayLoop {
  private readonly daemon: WireguardGo;
  private keys: KeyPair | undefined;
  private answer: GatewaySyncResponse | undefined;
  private applied: { generation: number; network: string; gatewayAddress: string } | undefined;
  private outage: string | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: GatewayOptions) {
    this.daemon = new WireguardGo(options.commands, options.iface, (note) => {
      if (!this.stopping) options.logger.warn({ note }, 'wireguard-go stopped; restarting it');
    });
  }

  get publicKey(): string {
    return (this.keys as KeyPair).publicKey;
  }

  async start(): Promise<void> {
    this.keys = ensureKeyPair(this.options);
    await this.checkForwarding();
    await this.ensureInterface();
    this.options.logger.info(
      { publicKey: this.keys.publicKey, endpoint: this.options.endpoint, listenPort: this.options.listenPort },
      'gateway interface up',
    );
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
    await removeForwardPolicy(this.options.commands, this.options.iface);
    await this.daemon.stop();
  }

  /** Forwarding is per network namespace; a container gets it from `docker run --sysctl`. */
  private async checkForwarding(): Promise<void> {
    const { commands } = this.options;
    const value = (await commands.run('cat', ['/proc/sys/net/ipv4/ip_forward'])).trim();
    if (value === '1') return;
    try {
      await commands.run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    } catch {
      throw new GatewayStartError(
        'IPv4 forwarding is off in this network namespace and cannot be turned on here: run the gateway container with ' +
          '--sysctl net.ipv4.ip_forward=1 (or, with host networking, set net.ipv4.ip_forward=1 on the host)',
      );
    }
  }

  private async ensureInterface(): Promise<void> {
    const { commands, iface, listenPort } = this.options;
    if (this.daemon.running) return;
    try {
      await this.daemon.start();
    } catch (error) {
      throw new GatewayStartError(
        `cannot create the WireGuard interface ${iface} (${(error as Error).message}): run the gateway with ` +
          '--user 0 --cap-add NET_ADMIN --device /dev/net/tun',
      );
    }
    await wgSetInterface(commands, iface, this.options.privateKeyFile, listenPort);
    await linkSetUp(commands, iface, OVERLAY_MTU);
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      try {
        if (!this.daemon.running) await this.ensureInterface();
        await this.syncOnce();
      } catch (error) {
        this.options.logger.error({ err: { message: (error as Error).message } }, 'gateway step failed');
      }
      const seconds = this.answer?.syncIntervalSeconds ?? GATEWAY_SYNC_SECONDS;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, seconds * 1000);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private async syncOnce(): Promise<void> {
    const { commands, iface, logger } = this.options;
    const dump = await wgDump(commands, iface);
    let answer: GatewaySyncResponse;
    try {
      answer = await this.options.manager.sync({
        publicKey: this.publicKey,
        endpoint: this.options.endpoint,
        routes: this.options.routes,
        peers: dump.peers.map(peerReport),
      });
    } catch (error) {
      const message = (error as Error).message;
      if (this.outage === undefined)
        logger.error(
          { err: { message }, peersKept: dump.peers.length },
          'manager sync failed; keeping the current peers',
        );
      this.outage = message;
      // A restarted wireguard-go lost its peers: give it back the last answer until the manager answers again.
      if (this.answer && this.applied?.generation !== this.daemon.generation) await this.reconcile(this.answer, dump);
      return;
    }
    if (this.outage !== undefined) logger.info('manager sync works again');
    this.outage = undefined;
    this.answer = answer;
    await this.reconcile(answer, dump);
  }

  /** The interface's peers become exactly the answer's, each admitted only from its own address (/32). */
  private async reconcile(answer: GatewaySyncResponse, dump: WgDump): Promise<void> {
    const { commands, iface, logger } = this.options;
    const applied = this.applied;
    if (
      !applied ||
      applied.generation !== this.daemon.generation ||
      applied.network !== answer.network ||
      applied.gatewayAddress !== answer.gatewayAddress
    ) {
      await addrSync(commands, iface, [`${answer.gatewayAddress}/${prefixOf(answer.network)}`]);
      await applyForwardPolicy(commands, iface, answer.network, this.options.routes);
      this.applied = {
        generation: this.daemon.generation,
        network: answer.network,
        gatewayAddress: answer.gatewayAddress,
      };
      logger.info({ network: answer.network, gatewayAddress: answer.gatewayAddress }, 'gateway address set');
    }
    const wanted = new Map<string, string>();
    for (const peer of answer.peers) if (!wanted.has(peer.publicKey)) wanted.set(peer.publicKey, `${peer.address}/32`);
    let removed = 0;
    let set = 0;
    for (const peer of dump.peers)
      if (!wanted.has(peer.publicKey)) {
        await wgRemovePeer(commands, iface, peer.publicKey);
        removed += 1;
      }
    for (const [publicKey, allowed] of wanted) {
      const current = dump.peers.find((peer) => peer.publicKey === publicKey);
      if (current && current.allowedIps.join(',') === allowed && current.persistentKeepalive === KEEPALIVE_SECONDS)
        continue;
      await wgSetPeer(commands, iface, { publicKey, allowedIps: [allowed], persistentKeepalive: KEEPALIVE_SECONDS });
      set += 1;
    }
    if (removed > 0 || set > 0) logger.info({ peers: wanted.size, added: set, removed }, 'peers reconciled');
  }
}

function peerReport(peer: WgDump['peers'][number]): GatewayPeerReport {
  return {
    publicKey: peer.publicKey,
    lastHandshakeAt: peer.latestHandshake > 0 ? new Date(peer.latestHandshake * 1000).toISOString() : null,
    rxBytes: peer.rxBytes,
    txBytes: peer.txBytes,
  };
}
