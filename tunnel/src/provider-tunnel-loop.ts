import { setTimeout as sleep } from 'node:timers/promises';
import {
  KEEPALIVE_SECONDS,
  OVERLAY_MTU,
  type OverlayConfig,
  TUNNEL_STATUS_EVERY_SECONDS,
  type TunnelReport,
  type TunnelState,
  type TunnelStatusFile,
} from '@ray-agent/protocol';
import { writeFileAtomic } from './atomic-file.js';
import { networkOf } from './cidr.js';
import { CommandError, type Commands } from './commands.js';
import { addrSync, linkSetUp, routeSync } from './ip.js';
import { ensureKeyPair, type KeyFiles } from './keys.js';
import type { Logger } from './log.js';
import { readOverlayConfig } from './overlay-config-reader.js';
import { type TunnelObservation, tunnelProblem, tunnelState } from './tunnel-state.js';
import { wgDump, wgRemovePeer, wgSetInterface, wgSetPeer } from './wg.js';
import { WireguardGo } from './wireguard-go.js';

export interface ProviderTunnelOptions extends KeyFiles {
  overlayConfigFile: string;
  statusFile: string;
  iface: string;
  commands: Commands;
  logger: Logger;
  /** This process's network namespace (`/proc/self/ns/net`), reported so an agent left in an older one notices; null when the loop drives a namespace it does not run in (tests). */
  networkNamespace: string | null;
  /** How often the config file and the interface are looked at. */
  tickMs?: number;
  statusEverySeconds?: number;
}

/** A tunnel that is not up re-sets a DNS endpoint this often: the gateway may have moved to a new address. */
const RESOLVE_EVERY_MS = 15_000;
const RESTART_BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 30_000];

interface Applied {
  overlay: OverlayConfig;
  generation: number;
}

/**
 * The provider's tunnel container: keeps the interface exactly as the agent's overlay config asks, and reports how
 * it is doing. Crash-only: every tick derives what to do from the config file and the interface as they are now, so
 * a restart (after a kill -9, or of wireguard-go alone) converges to the same state from the files.
 */
export class ProviderTunnelLoop {
  private readonly daemon: WireguardGo;
  private lastRaw: string | null | undefined;
  private applied: Applied | undefined;
  private observation: TunnelObservation | undefined;
  private endpointProblem: string | null = null;
  private lastResolveAtMs = 0;
  private startFailures = 0;
  private nextStartAtMs = 0;
  private lastWritten: { key: string; state: TunnelState; atMs: number } | undefined;
  private stopping = false;
  private running: Promise<void> | undefined;

  constructor(private readonly options: ProviderTunnelOptions) {
    this.daemon = new WireguardGo(options.commands, options.iface, (note) => {
      if (!this.stopping) options.logger.warn({ note }, 'wireguard-go stopped; restarting it');
    });
  }

  /** Makes or reuses the key pair and publishes the public key, then runs until `stop`. */
  start(): void {
    const pair = ensureKeyPair(this.options);
    this.options.logger.info(
      { publicKey: pair.publicKey, created: pair.created, file: this.options.publicKeyFile },
      'WireGuard public key published',
    );
    if (readOverlayConfig(this.options.overlayConfigFile).overlay)
      this.write(report('starting', null, null, null), null, Date.now());
    this.running = this.loop();
  }

  /** SIGTERM: the interface goes with the container, so nothing routes through a half-configured tunnel. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    await this.daemon.stop();
  }

  /** The wireguard-go process's start count (a reconfiguration does not restart it). */
  get daemonGeneration(): number {
    return this.daemon.generation;
  }

  private async loop(): Promise<void> {
    const tickMs = this.options.tickMs ?? 1_000;
    while (!this.stopping) {
      try {
        await this.tick();
      } catch (error) {
        this.options.logger.error({ err: { message: (error as Error).message } }, 'tunnel tick failed');
      }
      await sleep(tickMs);
    }
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    const config = readOverlayConfig(this.options.overlayConfigFile);
    if (config.raw !== this.lastRaw) {
      this.lastRaw = config.raw;
      this.options.logger.info(
        { overlay: config.overlay ? describe(config.overlay) : null, problem: config.problem },
        'overlay config read',
      );
    }
    const overlay = config.overlay;
    if (!overlay) {
      if (this.applied || this.daemon.running) {
        await this.daemon.stop();
        this.options.logger.info('no overlay: interface removed (direct mode)');
      }
      this.applied = undefined;
      this.write(report('off', null, null, config.problem), config.writtenAt, now);
      return;
    }
    if (!this.daemon.running) {
      if (now < this.nextStartAtMs) {
        this.write(report('error', overlay, null, this.interfaceProblem()), config.writtenAt, now);
        return;
      }
      try {
        await this.daemon.start();
        this.startFailures = 0;
      } catch (error) {
        const delay = RESTART_BACKOFF_MS[Math.min(this.startFailures, RESTART_BACKOFF_MS.length - 1)] ?? 30_000;
        this.startFailures += 1;
        this.nextStartAtMs = now + delay;
        this.options.logger.error({ err: { message: (error as Error).message } }, 'cannot create the interface');
        this.write(report('error', overlay, null, this.interfaceProblem()), config.writtenAt, now);
        return;
      }
    }
    try {
      this.write(await this.observe(overlay, now), config.writtenAt, now);
    } catch (error) {
      // The daemon runs but does not take its configuration: say so, and configure it from scratch next tick.
      this.applied = undefined;
      const message = (error as Error).message;
      this.options.logger.error({ err: { message } }, 'cannot configure the interface');
      const problem = `cannot configure the WireGuard interface ${this.options.iface}: ${message}`;
      this.write(report('error', overlay, null, problem.slice(0, 500)), config.writtenAt, now);
    }
  }

  /** Applies a new or changed config, then reads the gateway peer's counters into the state. */
  private async observe(overlay: OverlayConfig, now: number): Promise<TunnelReport> {
    if (
      !this.applied ||
      this.applied.generation !== this.daemon.generation ||
      !sameOverlay(this.applied.overlay, overlay)
    ) {
      await this.apply(overlay);
      this.applied = { overlay, generation: this.daemon.generation };
      this.observation = { configuredAtMs: now, latestHandshake: 0, rxBytes: 0, rxChangedAtMs: null, wasUp: false };
      this.lastResolveAtMs = now;
    }
    const peer = (await wgDump(this.options.commands, this.options.iface)).peers.find(
      (p) => p.publicKey === overlay.gatewayPublicKey,
    );
    const observed = this.observation as TunnelObservation;
    if (peer) {
      if (peer.rxBytes !== observed.rxBytes) observed.rxChangedAtMs = now;
      observed.rxBytes = peer.rxBytes;
      observed.latestHandshake = peer.latestHandshake;
    }
    const state = tunnelState(observed, now);
    if (state === 'up') observed.wasUp = true;
    if (state !== 'up' && now - this.lastResolveAtMs >= RESOLVE_EVERY_MS) {
      this.lastResolveAtMs = now;
      await this.setGatewayPeer(overlay);
    }
    const problem =
      state === 'unreachable' && this.endpointProblem
        ? this.endpointProblem
        : tunnelProblem(state, overlay.gatewayEndpoint, observed, now);
    return report(state, overlay, peer ?? null, problem);
  }

  /** Brings the running interface to the config, in place: wireguard-go keeps running across a new gateway or address. */
  private async apply(overlay: OverlayConfig): Promise<void> {
    const { commands, iface, logger } = this.options;
    const fresh = this.applied?.generation !== this.daemon.generation;
    if (fresh) await wgSetInterface(commands, iface, this.options.privateKeyFile);
    for (const peer of (await wgDump(commands, iface)).peers)
      if (peer.publicKey !== overlay.gatewayPublicKey) await wgRemovePeer(commands, iface, peer.publicKey);
    await this.setGatewayPeer(overlay);
    await linkSetUp(commands, iface, OVERLAY_MTU);
    await addrSync(commands, iface, [`${overlay.address}/32`]);
    await routeSync(commands, iface, routesOf(overlay));
    logger.info({ ...describe(overlay), restartedDaemon: fresh }, 'tunnel configured');
  }

  /** Sets the gateway peer; a DNS endpoint that does not resolve leaves the peer without one, and says so. */
  private async setGatewayPeer(overlay: OverlayConfig): Promise<void> {
    const { commands, iface } = this.options;
    const peer = {
      publicKey: overlay.gatewayPublicKey,
      allowedIps: routesOf(overlay),
      persistentKeepalive: KEEPALIVE_SECONDS,
    };
    try {
      await wgSetPeer(commands, iface, { ...peer, endpoint: overlay.gatewayEndpoint });
      this.endpointProblem = null;
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      const host = overlay.gatewayEndpoint.slice(0, overlay.gatewayEndpoint.lastIndexOf(':'));
      this.endpointProblem =
        `the gateway's address ${host} does not resolve (${error.stderr.trim().split('\n').pop()}): check this ` +
        "machine's DNS, or ask the cluster's operator to publish a gateway endpoint that resolves; retried every " +
        `${RESOLVE_EVERY_MS / 1000} s`;
      await wgSetPeer(commands, iface, peer);
    }
  }

  private interfaceProblem(): string {
    return (
      `cannot create the WireGuard interface ${this.options.iface} (${this.daemon.lastFailure ?? 'unknown reason'}): ` +
      'run the tunnel container with --user 0 --cap-add NET_ADMIN --device /dev/net/tun'
    );
  }

  /** On every change of what it says, and at least every TUNNEL_STATUS_EVERY_SECONDS (its age is the liveness). */
  private write(tunnel: TunnelReport, configWrittenAt: string | null, nowMs: number): void {
    const key = JSON.stringify([tunnel, configWrittenAt]);
    const every = (this.options.statusEverySeconds ?? TUNNEL_STATUS_EVERY_SECONDS) * 1000;
    if (this.lastWritten && this.lastWritten.key === key && nowMs - this.lastWritten.atMs < every) return;
    const file: TunnelStatusFile = {
      schemaVersion: 1,
      report: tunnel,
      configWrittenAt,
      updatedAt: new Date(nowMs).toISOString(),
      networkNamespace: this.options.networkNamespace,
    };
    writeFileAtomic(this.options.statusFile, `${JSON.stringify(file, null, 2)}\n`, 0o644);
    if (this.lastWritten?.state !== tunnel.state)
      this.options.logger.info({ state: tunnel.state, problem: tunnel.problem }, 'tunnel state');
    this.lastWritten = { key, state: tunnel.state, atMs: nowMs };
  }
}

function report(
  state: TunnelState,
  overlay: OverlayConfig | null,
  peer: { latestHandshake: number; rxBytes: number; txBytes: number } | null,
  problem: string | null,
): TunnelReport {
  return {
    state,
    address: overlay?.address ?? null,
    gatewayEndpoint: overlay?.gatewayEndpoint ?? null,
    lastHandshakeAt: peer && peer.latestHandshake > 0 ? new Date(peer.latestHandshake * 1000).toISOString() : null,
    rxBytes: peer?.rxBytes ?? 0,
    txBytes: peer?.txBytes ?? 0,
    problem,
  };
}

function routesOf(overlay: OverlayConfig): string[] {
  return [...new Set(overlay.routes.map(networkOf))];
}

function sameOverlay(a: OverlayConfig, b: OverlayConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function describe(overlay: OverlayConfig) {
  return { address: overlay.address, gatewayEndpoint: overlay.gatewayEndpoint, routes: overlay.routes };
}
