import { readlinkSync } from 'node:fs';
import type { ClusterAccess, TunnelReport, WireguardKey } from '@ray-agent/protocol';
import type { AgentConfig } from '../config/agent-config.js';
import { formatGcsAddress } from '../config/ray-head.js';
import type { Logger } from '../log.js';
import type { StatusModel } from '../status/status-model.js';
import { sleep } from '../supervisor/backoff.js';
import { ClusterAccessStore, letTunnelIntoStateDir } from './cluster-access-store.js';
import { type JoinTarget, joinTarget, needsRejoin } from './join-target.js';
import { type OverlayPaths, overlayCapable, type Read, readPublicKey, readTunnelStatus } from './tunnel-files.js';
import { currentTunnel, OFF_REPORT, tunnelProblem } from './tunnel-report.js';

function readOwnNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/net');
  } catch {
    return null;
  }
}

/** How long registration waits for the tunnel container's key before it registers in direct mode. */
export const PUBLIC_KEY_WAIT_SECONDS = 60;
const POLL_MS = 1_000;

/**
 * The agent's side of the overlay: the tunnel container's key and report, and the manager's ClusterAccess, kept
 * durably. Without a tunnel volume (no tunnel container) the agent stays in direct mode and only Ray's token, if the
 * manager sends one, applies.
 */
export class ClusterAccessKeeper {
  readonly tunnel: boolean;
  private readonly store: ClusterAccessStore;
  private key: Read<WireguardKey> = { ok: false, problem: 'not read yet' };
  private report: TunnelReport = OFF_REPORT;
  private target: JoinTarget;
  private loggedMode: boolean | undefined;
  private warnedNoTunnel = false;
  /** The tunnel went down while the node was joined. */
  private down = false;
  /** Set once a fresh report came from a tunnel container in another network namespace than this agent's. */
  private lostNamespace: string | undefined;

  constructor(
    /** `nodeIp`: the address the node advertises in direct mode, as the status shows it. */
    private readonly config: Pick<AgentConfig, 'gcs' | 'nodeIpAddress' | 'stateDir'> & { nodeIp: string },
    private readonly paths: OverlayPaths,
    private readonly model: StatusModel,
    private readonly log: Logger,
    private readonly now: () => Date = () => new Date(),
    /** This agent's network namespace, compared with the one the tunnel container reports. */
    private readonly ownNamespace: string | null = readOwnNamespace(),
  ) {
    this.tunnel = overlayCapable(paths);
    this.store = new ClusterAccessStore(paths, this.tunnel, now);
    this.target = this.targetFor(undefined);
  }

  /** Reads what an earlier run kept: until the manager answers, the agent joins as it did then. */
  start(): void {
    if (this.tunnel) this.openStateDir();
    const { access, problems } = this.store.load();
    for (const problem of problems) this.log.warn(problem);
    this.apply(access);
    this.refresh();
  }

  private openStateDir(): void {
    try {
      if (letTunnelIntoStateDir(this.config.stateDir))
        this.log.info(
          { stateDir: this.config.stateDir },
          'state directory made 0711 so the tunnel container can read the overlay file',
        );
    } catch (error) {
      // Not fatal: a directory the controller made 0711 already works; the tunnel's report says if it cannot read.
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      this.log.warn(
        { stateDir: this.config.stateDir, code },
        'could not make the state directory 0711 for the tunnel container',
      );
    }
  }

  /** Reads the tunnel container's key and report again (every sample tick, and before each message). */
  refresh(): void {
    if (!this.tunnel) {
      this.model.tunnel = OFF_REPORT;
      return;
    }
    this.key = readPublicKey(this.paths.publicKeyFile);
    const status = readTunnelStatus(this.paths.statusFile);
    this.report = currentTunnel(status, this.store.configWrittenAt, this.now());
    this.model.tunnel = this.report;
    // Only a live report counts (a stale one is from a tunnel container that is gone, not restarted).
    const theirs = status.ok ? status.value.networkNamespace : undefined;
    if (theirs && this.ownNamespace && theirs !== this.ownNamespace && this.report.state !== 'error')
      this.lostNamespace = theirs;
  }

  /**
   * The tunnel container restarted: it has a new network namespace and this agent is still in the old one, where
   * nothing reaches the cluster or the manager. Only a restart of this container joins the new one.
   */
  namespaceLost(): string | undefined {
    return (
      this.lostNamespace && `the tunnel container now runs in ${this.lostNamespace}, this agent in ${this.ownNamespace}`
    );
  }

  /** Before registering: the key, so the manager can answer with an overlay. Bounded: the agent is useful without. */
  async waitForKey(signal: AbortSignal, seconds = PUBLIC_KEY_WAIT_SECONDS): Promise<void> {
    if (!this.tunnel) return;
    const until = Date.now() + seconds * 1000;
    this.refresh();
    while (!this.key.ok && !signal.aborted && Date.now() < until) {
      this.failOnce(
        'tunnel_key_missing',
        `waiting up to ${seconds} s for the tunnel container's public key: ${this.key.problem}`,
      );
      await sleep(POLL_MS, signal);
      this.refresh();
    }
    this.model.clearError('tunnel_key_missing');
    if (this.key.ok || signal.aborted) return;
    const warning = `the tunnel container published no public key within ${seconds} s (${this.key.problem}); registering in direct mode, and the key goes with the heartbeats once it appears`;
    this.model.warn(warning);
    this.log.warn(warning);
  }

  registerFields(): { wireguardPublicKey?: WireguardKey } {
    this.refresh();
    return this.key.ok ? { wireguardPublicKey: this.key.value } : {};
  }

  /** In direct mode (no tunnel container) the heartbeat is what it was before the overlay. */
  heartbeatFields(): { wireguardPublicKey?: WireguardKey; tunnel?: TunnelReport } {
    if (!this.tunnel) return {};
    this.refresh();
    return { ...(this.key.ok ? { wireguardPublicKey: this.key.value } : {}), tunnel: this.report };
  }

  /**
   * Keeps the manager's answer (absent: a manager from before the overlay, nothing changes). Returns why a running
   * node must leave and join again, if it must.
   */
  accept(access: ClusterAccess | undefined): string | undefined {
    if (access === undefined) return undefined;
    if (access.overlay && !this.tunnel && !this.warnedNoTunnel) {
      this.warnedNoTunnel = true;
      this.log.warn('the manager offers an overlay, but no tunnel container runs beside this agent: joining directly');
    }
    const change = this.store.save(access);
    const before = this.target;
    this.apply(this.store.access());
    this.refresh();
    if (change.token) return "the cluster's Ray token changed";
    return needsRejoin(before, this.target) ? `the way into the cluster changed (now ${this.describe()})` : undefined;
  }

  /** Where the node joins now. */
  joinTarget(): JoinTarget {
    return this.target;
  }

  /** Overlay mode and the tunnel is not up (for the config written): Ray cannot reach the head. */
  tunnelDown(): boolean {
    return this.target.overlay && this.report.state !== 'up';
  }

  /** Resolves once the node may start for the current target: at once in direct mode, else when the tunnel is up. */
  async whenTunnelUp(signal: AbortSignal): Promise<void> {
    this.refresh();
    while (this.tunnelDown() && !signal.aborted) {
      this.failOnce('tunnel_down', tunnelProblem(this.report));
      await sleep(POLL_MS, signal);
      this.refresh();
    }
    this.model.clearError('tunnel_down');
    this.down = false;
  }

  /**
   * While the node is joined: a tunnel that goes down turns the agent to reconnecting with the tunnel's sentence
   * (Ray itself notices only after its reconnect timeout); once it is up again, contributing, if the head answers.
   */
  watchJoined(headAnswers: () => boolean): void {
    const { model } = this;
    if (this.tunnelDown()) {
      if (!this.down)
        this.log.warn({ tunnel: this.report.state, problem: this.report.problem }, 'the tunnel to the cluster is down');
      this.down = true;
      this.failOnce('tunnel_down', tunnelProblem(this.report));
      if (model.current === 'contributing') model.setState('reconnecting');
      return;
    }
    if (!this.down) return;
    this.down = false;
    model.clearError('tunnel_down');
    this.log.info('the tunnel to the cluster is up again');
    if (model.current === 'reconnecting' && headAnswers()) model.setState('contributing');
  }

  /** The same sentence again keeps its first time: the status says since when. */
  private failOnce(code: string, message: string): void {
    const error = this.model.error;
    if (error?.code !== code || error.message !== message) this.model.fail(code, message);
  }

  private apply(access: ClusterAccess | undefined): void {
    this.target = this.targetFor(access);
    this.model.gcsAddress = formatGcsAddress(this.target.gcs);
    this.model.ray.nodeIp =
      this.target.nodeIpAddress && this.target.overlay ? this.target.nodeIpAddress : this.config.nodeIp;
    // Said once per change of mode, and only once the manager (or an earlier run) said how to join.
    if (access === undefined || this.loggedMode === this.target.overlay) return;
    this.loggedMode = this.target.overlay;
    if (this.target.overlay)
      this.log.info(
        { gcs: this.model.gcsAddress, nodeIp: this.target.nodeIpAddress, rayHead: formatGcsAddress(this.config.gcs) },
        "joining the head's GCS over the overlay the manager gave, instead of RAY_HEAD's address",
      );
    else if (this.tunnel)
      this.log.info({ gcs: this.model.gcsAddress }, 'the manager offers no overlay: joining RAY_HEAD directly');
  }

  private targetFor(access: ClusterAccess | undefined): JoinTarget {
    return joinTarget(
      { gcs: this.config.gcs, nodeIpAddress: this.config.nodeIpAddress },
      this.tunnel ? access : access && { ...access, overlay: null },
      this.paths.rayAuthTokenFile,
    );
  }

  private describe(): string {
    return this.target.overlay
      ? `${this.model.gcsAddress} over the overlay as ${this.target.nodeIpAddress}`
      : `${this.model.gcsAddress} directly`;
  }
}
