import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GATEWAY_DEFAULT_PORT,
  KEEPALIVE_SECONDS,
  OVERLAY_INTERFACE,
  OVERLAY_MTU,
  ProviderList,
  STATE_DIR,
  type StatusDocument,
  TUNNEL_DIR,
} from '@ray-agent/protocol';
import { Agent, request } from 'undici';
import { HEAD_START_ARGS } from '../../controller/src/playground/playground.js';
import { AGENT_IMAGE, Agent0, HARDENED, MANAGER_IMAGE, publishedPort } from './cluster.js';
import { type Home, HomeNetworks, inNetns, ROUTER_IMAGE, type Subnets } from './home-network.js';
import { docker, run, waitFor } from './run.js';
import { makePki, type TestPki, writeSecret } from './tls.js';

/**
 * The overlay's whole system in the real shape: on the cluster network the manager and the WireGuard gateway, the
 * Ray head in the gateway's network namespace (so its GCS is at the gateway's overlay address); each provider (a
 * tunnel container owning the network namespace, the agent container joined to it) on its own home network behind a
 * NAT router. The cluster side has no route to any home network: the provider is reachable only through its tunnel.
 */
export interface OverlayClusterOptions {
  /**
   * The gateway's network namespace is owned by a holder container that the gateway and the head both join, as on
   * an operator's head host with host networking: restarting the gateway leaves the head's network as it is.
   * Without it the head shares the gateway container's own namespace (the playground's shape).
   */
  gatewayNetnsHolder?: boolean;
  /** The /24s of the networks (default: the e2e tests'); a benchmark running beside the tests passes its own. */
  subnets?: Subnets;
}

export class OverlayCluster {
  readonly net: HomeNetworks;
  readonly id: string;
  readonly manager: string;
  readonly gateway: string;
  /** Shares the gateway's network namespace. */
  readonly head: string;
  /** Owns the gateway's network namespace when `gatewayNetnsHolder` is set. */
  readonly gatewayNetns: string;
  readonly managerAddress: string;
  readonly gatewayAddress: string;
  readonly enrollmentToken = randomBytes(32).toString('base64url');
  readonly adminToken = randomBytes(32).toString('base64url');
  readonly gatewayToken = randomBytes(32).toString('base64url');
  readonly rayAuthToken = randomBytes(32).toString('base64url');
  pki!: TestPki;
  /** The gateway's own overlay address, as it brought up its interface. */
  gatewayOverlayAddress = '';
  private managerPort = 0;
  private tls: Agent | undefined;

  constructor(private readonly options: OverlayClusterOptions = {}) {
    this.net = new HomeNetworks(options.subnets);
    this.id = this.net.id;
    this.manager = `ray-agent-e2e-manager-${this.id}`;
    this.gateway = `ray-agent-e2e-gateway-${this.id}`;
    this.head = `ray-agent-e2e-head-${this.id}`;
    this.gatewayNetns = `ray-agent-e2e-gateway-netns-${this.id}`;
    this.managerAddress = this.net.cluster.address(20);
    this.gatewayAddress = this.net.cluster.address(21);
  }

  /** Every secret this system holds, for asserting that none shows up where it must not. */
  get secrets(): string[] {
    return [this.enrollmentToken, this.adminToken, this.gatewayToken, this.rayAuthToken];
  }

  async start(homes: number): Promise<void> {
    try {
      await this.net.create(homes);
      this.pki = await makePki([this.manager, this.managerAddress, 'localhost', '127.0.0.1'], {
        dir: mkdtempSync(join(tmpdir(), 'ray-agent-e2e-overlay-')),
      });
      writeSecret(this.pki.dir, 'enrollment-token', this.enrollmentToken);
      writeSecret(this.pki.dir, 'admin-token', this.adminToken);
      writeSecret(this.pki.dir, 'gateway-token', this.gatewayToken);
      writeSecret(this.pki.dir, 'ray-auth-token', this.rayAuthToken);
      await this.startManager();
      await this.startGateway();
      await this.startHead();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  async stop(): Promise<void> {
    const tls = this.tls;
    this.tls = undefined;
    await tls?.close();
    await this.net.remove();
  }

  private async startManager(): Promise<void> {
    await docker(
      'run',
      '-d',
      '--name',
      this.manager,
      ...this.net.labelFlags(),
      '--network',
      this.net.cluster.network,
      '--ip',
      this.managerAddress,
      '-p',
      '127.0.0.1::8443',
      '-v',
      `${this.pki.dir}:/certs:ro`,
      MANAGER_IMAGE,
      'serve',
      '--db',
      '/tmp/manager.db',
      '--cert',
      '/certs/server.pem',
      '--key',
      '/certs/server.key',
      '--port',
      '8443',
      '--heartbeat-interval',
      '2',
      '--enrollment-token-file',
      '/certs/enrollment-token',
      '--admin-token-file',
      '/certs/admin-token',
      '--gateway-token-file',
      '/certs/gateway-token',
      '--ray-auth-token-file',
      '/certs/ray-auth-token',
    );
    this.managerPort = await publishedPort(this.manager, 8443);
    await waitFor(
      'the manager to answer',
      async () => ((await this.managerGet('/healthz')).status === 200 ? true : undefined),
      60_000,
    );
  }

  /** The gateway from the manager's image, exactly as an operator starts it; waits for its overlay interface. */
  private async startGateway(): Promise<void> {
    // Its key lives here: a restarted gateway keeps its identity.
    await docker('volume', 'create', ...this.net.labelFlags(), `${this.gateway}-data`);
    const placement = ['--network', this.net.cluster.network, '--ip', this.gatewayAddress];
    const forwarding = ['--sysctl', 'net.ipv4.ip_forward=1'];
    if (this.options.gatewayNetnsHolder)
      await docker(
        'run',
        '-d',
        '--name',
        this.gatewayNetns,
        ...this.net.labelFlags(),
        ...placement,
        ...forwarding,
        '--cap-drop',
        'ALL',
        '--init',
        '--entrypoint',
        'sleep',
        ROUTER_IMAGE,
        'infinity',
      );
    await docker(
      'run',
      '-d',
      '--name',
      this.gateway,
      ...this.net.labelFlags(),
      ...(this.options.gatewayNetnsHolder
        ? ['--network', `container:${this.gatewayNetns}`]
        : [...placement, ...forwarding]),
      '--user',
      '0',
      '--cap-drop',
      'ALL',
      '--cap-add',
      'NET_ADMIN',
      '--device',
      '/dev/net/tun',
      '-v',
      `${this.gateway}-data:/var/lib/ray-agent-gateway`,
      '-v',
      `${this.pki.dir}:/certs:ro`,
      MANAGER_IMAGE,
      'gateway',
      '--manager',
      `https://${this.managerAddress}:8443`,
      '--token-file',
      '/certs/gateway-token',
      '--endpoint',
      `${this.gatewayAddress}:${GATEWAY_DEFAULT_PORT}`,
      '--listen-port',
      String(GATEWAY_DEFAULT_PORT),
      '--data-dir',
      '/var/lib/ray-agent-gateway',
      '--manager-ca-file',
      '/certs/ca.pem',
    );
    this.gatewayOverlayAddress = await this.waitForGatewayInterface(60_000);
  }

  /** Waits until the gateway's interface carries its overlay address (after a start or a restart); returns it. */
  waitForGatewayInterface(timeoutMs: number): Promise<string> {
    return waitFor(
      `${this.gateway} to bring up ${OVERLAY_INTERFACE}`,
      async () => {
        const shown = await inNetns(this.gateway, ['ip', '-4', '-o', 'addr', 'show', 'dev', OVERLAY_INTERFACE]);
        return /inet (\d+\.\d+\.\d+\.\d+)\//.exec(shown.stdout)?.[1];
      },
      timeoutMs,
    );
  }

  /** The public keys of the peers the gateway's interface admits now (`wg show` in the gateway container). */
  async gatewayPeers(): Promise<string[]> {
    return (await docker('exec', this.gateway, 'wg', 'show', OVERLAY_INTERFACE, 'peers')).split('\n').filter(Boolean);
  }

  async gatewayPublicKey(): Promise<string> {
    return docker('exec', this.gateway, 'wg', 'show', OVERLAY_INTERFACE, 'public-key');
  }

  /** The head advertises the gateway's overlay address, the only one of its addresses a provider can reach. */
  private async startHead(): Promise<void> {
    await docker(
      'run',
      '-d',
      '--name',
      this.head,
      ...this.net.labelFlags(),
      '--network',
      `container:${this.gateway}`,
      '--shm-size=512m',
      '--no-healthcheck',
      '-v',
      `${this.pki.dir}:/certs:ro`,
      // A path, not the token: `docker exec` drivers inherit both and authenticate the same way.
      '-e',
      'RAY_AUTH_MODE=token',
      '-e',
      'RAY_AUTH_TOKEN_PATH=/certs/ray-auth-token',
      '--entrypoint',
      'ray',
      AGENT_IMAGE,
      ...HEAD_START_ARGS,
      `--node-ip-address=${this.gatewayOverlayAddress}`,
    );
    await waitFor(
      'the head to serve its GCS',
      async () => {
        // `ray start` gives its raylet a fixed 30 s to register, which a loaded 2-core machine can miss: start again.
        if ((await docker('inspect', '-f', '{{.State.Running}}', this.head)) !== 'true')
          await docker('start', this.head);
        const probe = await this.driver('import ray; ray.init(address="auto"); print("ok")', 60_000);
        return probe.code === 0 ? true : undefined;
      },
      300_000,
      2000,
    );
  }

  /**
   * A provider on home network `homeIndex`: the tunnel container (owner of the network namespace, on the home
   * network, its default route via the home's router) and the agent container joined to it, with the settings the
   * controller gives them. `onRun` is called just before the first `docker run` (the tunnel's), after the volumes
   * are made: where a benchmark starts timing a provider's start.
   */
  async startProvider(homeIndex: number, hostNumber = 10, onRun?: () => void): Promise<OverlayProvider> {
    const home = this.net.homes[homeIndex];
    if (!home) throw new Error(`no home ${homeIndex}`);
    const name = `ray-agent-e2e-provider${homeIndex}-${this.id}`;
    const tunnel = `${name}-tunnel`;
    const stateVolume = `${name}-state`;
    const tunnelVolume = `${name}-tunnel`;
    const homeAddress = home.address(hostNumber);
    for (const volume of [stateVolume, tunnelVolume])
      await docker('volume', 'create', ...this.net.labelFlags(), volume);
    // The state volume takes the image's own directory (owner uid 1000, mode 0711) before any container mounts it
    // read-only.
    await docker('run', '--rm', '-v', `${stateVolume}:${STATE_DIR}`, '--entrypoint', 'true', AGENT_IMAGE);
    onRun?.();
    await docker(
      'run',
      '-d',
      '--name',
      tunnel,
      ...this.net.labelFlags(),
      '--network',
      home.network,
      '--ip',
      homeAddress,
      '-p',
      '127.0.0.1::8765',
      '--user',
      '0',
      '--cap-drop',
      'ALL',
      '--cap-add',
      'NET_ADMIN',
      '--device',
      '/dev/net/tun',
      '--read-only',
      '--tmpfs',
      '/run',
      '--security-opt',
      'no-new-privileges',
      '--init',
      '--no-healthcheck',
      // As the README's two lines: either container that ends is started again (the agent into the new namespace).
      '--restart=unless-stopped',
      '-e',
      'TINI_SUBREAPER=1',
      '-v',
      `${tunnelVolume}:${TUNNEL_DIR}`,
      '-v',
      `${stateVolume}:${STATE_DIR}:ro`,
      AGENT_IMAGE,
      'tunnel',
    );
    await this.net.routeViaRouter(tunnel, home);
    const agent = name;
    await docker(
      'run',
      '-d',
      '--name',
      agent,
      ...this.net.labelFlags(),
      '--network',
      `container:${tunnel}`,
      '--restart=unless-stopped',
      '--shm-size=1g',
      '--stop-timeout=60',
      ...HARDENED,
      '-v',
      `${this.pki.dir}:/certs:ro`,
      '-v',
      `${stateVolume}:${STATE_DIR}`,
      '-v',
      `${tunnelVolume}:${TUNNEL_DIR}:ro`,
      // RAY_HEAD is the direct-mode fallback; over the overlay the agent joins the GCS the manager names.
      '-e',
      `RAY_HEAD=ray://${this.gatewayOverlayAddress}:10001`,
      '-e',
      `MANAGER_URL=https://${this.managerAddress}:8443/api/register`,
      '-e',
      'MANAGER_CA_FILE=/certs/ca.pem',
      '-e',
      'AGENT_TOKEN_FILE=/certs/enrollment-token',
      '-e',
      'HEARTBEAT_INTERVAL=2',
      '--cpus=2',
      '--memory=4g',
      AGENT_IMAGE,
    );
    return new OverlayProvider(agent, tunnel, stateVolume, await publishedPort(tunnel, 8765), home, homeAddress);
  }

  /**
   * A rogue tunnel on home network `homeIndex`: wireguard-go and wg from the agent image with a key of its own that
   * the manager never registered, configured to the gateway's endpoint and key and claiming `overlayAddress`.
   */
  async startRogueTunnel(homeIndex: number, hostNumber: number, overlayAddress: string): Promise<string> {
    const home = this.net.homes[homeIndex];
    if (!home) throw new Error(`no home ${homeIndex}`);
    const name = `ray-agent-e2e-rogue${homeIndex}-${this.id}`;
    const network = `${this.gatewayOverlayAddress.split('.').slice(0, 2).join('.')}.0.0/16`;
    const script = [
      'set -eu',
      'umask 077',
      'wg genkey >/run/private.key',
      `WG_PROCESS_FOREGROUND=1 wireguard-go ${OVERLAY_INTERFACE} &`,
      `until wg show ${OVERLAY_INTERFACE} >/dev/null 2>&1; do sleep 0.2; done`,
      `wg set ${OVERLAY_INTERFACE} private-key /run/private.key peer "$GATEWAY_KEY" endpoint "$GATEWAY_ENDPOINT" ` +
        `allowed-ips "$NETWORK" persistent-keepalive ${KEEPALIVE_SECONDS}`,
      `ip addr add "$ADDRESS/32" dev ${OVERLAY_INTERFACE}`,
      `ip link set ${OVERLAY_INTERFACE} up mtu ${OVERLAY_MTU}`,
      `ip route add "$NETWORK" dev ${OVERLAY_INTERFACE}`,
      'echo rogue ready',
      'wait',
    ].join('\n');
    await docker(
      'run',
      '-d',
      '--name',
      name,
      ...this.net.labelFlags(),
      '--network',
      home.network,
      '--ip',
      home.address(hostNumber),
      '--user',
      '0',
      '--cap-drop',
      'ALL',
      '--cap-add',
      'NET_ADMIN',
      '--device',
      '/dev/net/tun',
      '--tmpfs',
      '/run',
      '--init',
      '--no-healthcheck',
      '-e',
      `GATEWAY_KEY=${await this.gatewayPublicKey()}`,
      '-e',
      `GATEWAY_ENDPOINT=${this.gatewayAddress}:${GATEWAY_DEFAULT_PORT}`,
      '-e',
      `NETWORK=${network}`,
      '-e',
      `ADDRESS=${overlayAddress}`,
      '--entrypoint',
      'sh',
      AGENT_IMAGE,
      '-c',
      script,
    );
    await this.net.routeViaRouter(name, home);
    await waitFor(
      `${name} to configure its interface`,
      async () => ((await run('docker', ['logs', name])).stdout.includes('rogue ready') ? true : undefined),
      30_000,
    );
    return name;
  }

  async providers(): Promise<ProviderList['providers']> {
    const response = await this.managerGet('/api/providers', this.adminToken);
    if (response.status !== 200) throw new Error(`providers: ${response.status} ${response.text}`);
    return ProviderList.parse(JSON.parse(response.text)).providers;
  }

  async managerGet(path: string, bearer?: string): Promise<{ status: number; text: string }> {
    return this.managerRequest('GET', path, bearer);
  }

  async managerPost(path: string, bearer?: string): Promise<{ status: number; text: string }> {
    return this.managerRequest('POST', path, bearer);
  }

  private async managerRequest(
    method: 'GET' | 'POST',
    path: string,
    bearer?: string,
  ): Promise<{ status: number; text: string }> {
    this.tls ??= new Agent({ connect: { ca: readFileSync(this.pki.caCert, 'utf8') } });
    const response = await request(`https://localhost:${this.managerPort}${path}`, {
      method,
      dispatcher: this.tls,
      headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
    });
    return { status: response.statusCode, text: await response.body.text() };
  }

  /** A Ray driver on the head (same Ray and Python as the agent), authenticated with the cluster's Ray token. */
  driver(script: string, timeoutMs = 180_000) {
    return run('docker', ['exec', '-i', this.head, 'python3', '-'], { input: script, timeoutMs });
  }

  /** Opens a TCP connection from inside the head's (the gateway's) network namespace; non-zero exit if it cannot. */
  connectFromHead(address: string, port: number, seconds = 10) {
    const script = `import socket; socket.create_connection(("${address}", ${port}), timeout=${seconds}); print("connected")`;
    return run('docker', ['exec', this.head, 'python3', '-c', script], { timeoutMs: (seconds + 30) * 1000 });
  }
}

/** A provider's two containers; its status endpoint is published on the tunnel container, which owns the netns. */
export class OverlayProvider extends Agent0 {
  constructor(
    name: string,
    readonly tunnel: string,
    volume: string,
    statusPort: number,
    readonly home: Home,
    /** The tunnel container's address on its home network: what the provider's address "really" is. */
    readonly homeAddress: string,
  ) {
    super(name, volume, statusPort);
  }

  override async restarted(): Promise<void> {
    this.statusPort = await publishedPort(this.tunnel, 8765);
  }

  waitForTunnel(state: NonNullable<StatusDocument['tunnel']>['state'], timeoutMs = 120_000): Promise<StatusDocument> {
    return this.waitForStatus(`tunnel ${state}`, (status) => status.tunnel?.state === state, timeoutMs);
  }
}

/** Keeps a measurement or an observation in e2e/artifacts/overlay-measurements.jsonl: reported, never asserted. */
export function recordMeasurement(what: string, values: Record<string, unknown>): void {
  const dir = join(import.meta.dirname, '..', 'artifacts');
  mkdirSync(dir, { recursive: true });
  const line = JSON.stringify({ what, ...values, at: new Date().toISOString() });
  appendFileSync(join(dir, 'overlay-measurements.jsonl'), `${line}\n`);
}
