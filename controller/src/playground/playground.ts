import { randomBytes } from 'node:crypto';
import { GATEWAY_DEFAULT_PORT, OVERLAY_INTERFACE, type PullProgress } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import type { AgentContainer, AgentSpec } from '../container/agent-container.js';
import { type AgentSettings, agentSpecFor } from '../container/agent-spec.js';
import { tarFiles } from '../engine/tar.js';
import { PLAYGROUND_NETWORKS, PlaygroundNetworks } from './playground-network.js';
import { makePlaygroundPki } from './playground-pki.js';

/**
 * The local playground: a complete Ray Agent system on this machine, for a person with no cluster yet, in the real
 * shape of a provider behind a home router. On a "cluster" network: the reference manager over TLS with a private
 * CA made here, the WireGuard gateway, and a Ray head with no CPUs of its own (so every task runs on the agent) in
 * one network namespace with the gateway (held by a container of its own, the "cluster host"), with Ray's token
 * authentication on. On a "home" network behind a NAT router: the agent with its tunnel container, which dials out
 * to the gateway; the cluster side cannot reach it otherwise.
 */
export const PLAYGROUND = {
  network: PLAYGROUND_NETWORKS.cluster.name,
  head: 'ray-agent-playground-head',
  manager: 'ray-agent-playground-manager',
  managerVolume: 'ray-agent-playground-manager-data',
  gateway: 'ray-agent-playground-gateway',
  /**
   * Owns the network namespace the gateway and the head share, as the head's host does for a gateway with host
   * networking: either of the two can restart without taking the other's network with it.
   */
  clusterHost: 'ray-agent-playground-cluster-host',
  gatewayVolume: 'ray-agent-playground-gateway-data',
  label: 'io.ray-agent.playground',
} as const;

/** Where the gateway keeps its key pair (its own volume) and where the head finds Ray's token. */
const GATEWAY_DATA_DIR = '/var/lib/ray-agent-gateway';
const HEAD_RAY_TOKEN_FILE = { dir: '/tmp', name: 'ray-auth-token' } as const;
/** The agent image's user: the head runs from it and must read its token file. */
const AGENT_UID = 1000;
const MANAGER_UID = 10001;

/** `ray start` for a head with no CPUs of its own, so every task must run on an agent. */
export const HEAD_START_ARGS = [
  'start',
  '--head',
  '--num-cpus=0',
  '--port=6379',
  '--include-dashboard=false',
  '--disable-usage-stats',
  '--block',
] as const;

export interface PlaygroundOptions {
  /** The person's settings: the agent's image (the head runs it too), limits and status port. */
  settings: AgentSettings;
  managerImage: string;
  onProgress?: (progress: PullProgress) => void;
  /** Extra agent variables, e.g. a shorter heartbeat interval. */
  extraEnv?: Record<string, string>;
}

export class Playground {
  private readonly networks: PlaygroundNetworks;

  constructor(
    private readonly docker: Dockerode,
    private readonly agent: AgentContainer,
  ) {
    this.networks = new PlaygroundNetworks(docker, PLAYGROUND.label);
  }

  /**
   * Makes the networks and the router, then (again each time: a new manager means a new CA and new tokens) the
   * manager, the gateway and the head in its namespace, and brings the agent pair up on the home network.
   */
  async up(options: PlaygroundOptions): Promise<{ spec: AgentSpec }> {
    const progress = options.onProgress ?? (() => {});
    const agentImage = options.settings.image;
    await this.agent.ensureImage(agentImage, progress);
    await this.agent.ensureImage(options.managerImage, progress);
    // The head and the gateway share the cluster host's namespace, and the gateway holds the manager's token: all
    // go together.
    for (const name of [PLAYGROUND.head, PLAYGROUND.gateway, PLAYGROUND.clusterHost])
      await this.docker.getContainer(name).remove({ force: true }).catch(ignoreMissing);
    await this.networks.ensure();
    await this.networks.ensureRouter(options.managerImage);
    const access = await this.ensureManager(options.managerImage);
    await this.ensureClusterHost(options.managerImage);
    const gatewayAddress = await this.ensureGateway(options.managerImage, access);
    await this.ensureHead(agentImage, gatewayAddress, access.rayAuthToken);
    // A new manager means a new CA and token: they are delivered into the agent's volume (the agent restarts to
    // read them), the containers stay. The playground is the real shape, so the pair even if settings say direct.
    const spec = agentSpecFor({
      settings: { ...options.settings, network: 'overlay' },
      name: this.agent.name,
      cluster: {
        clusterAddress: `ray://${gatewayAddress}:10001`,
        managerUrl: `https://${PLAYGROUND_NETWORKS.managerAddress}:8443`,
      },
      secrets: { token: access.enrollmentToken, managerCaPem: access.caPem },
      overrides: {
        network: PLAYGROUND_NETWORKS.home.name,
        ...(options.extraEnv ? { extraEnv: options.extraEnv } : {}),
      },
    });
    await this.agent.up(spec, progress);
    await this.networks.routeViaRouter(this.agent.tunnelName, options.managerImage);
    return { spec };
  }

  /** Runs a small sample Ray job on the head; returns what it printed. Its tasks can only run on the agent. */
  async sampleJob(tasks = 8, seconds = 5): Promise<string> {
    const script = [
      'import ray, time',
      'ray.init(address="auto", logging_level="ERROR")',
      '@ray.remote(num_cpus=0.5)',
      'def square(x):',
      `    time.sleep(${Number(seconds)})`,
      '    return x * x',
      `print("sample job results:", ray.get([square.remote(i) for i in range(${Number(tasks)})]), flush=True)`,
    ].join('\n');
    const exec = await this.docker.getContainer(PLAYGROUND.head).exec({
      Cmd: ['python3', '-c', script],
      AttachStdout: true,
      AttachStderr: true,
    });
    const output = (await collect(this.docker, await exec.start({ hijack: true, stdin: false }))).trim();
    const { ExitCode } = await exec.inspect();
    if (ExitCode !== 0)
      throw new Error(`the sample job failed (exit ${ExitCode}): ${output.split('\n').slice(-3).join(' ')}`);
    return output;
  }

  /** Removes the head, gateway, manager, router, their data and the networks. The agent is the caller's to stop. */
  async down(): Promise<void> {
    for (const name of [PLAYGROUND.head, PLAYGROUND.gateway, PLAYGROUND.clusterHost, PLAYGROUND.manager]) {
      await this.docker.getContainer(name).remove({ force: true, v: true }).catch(ignoreMissing);
    }
    for (const volume of [PLAYGROUND.managerVolume, PLAYGROUND.gatewayVolume])
      await this.docker.getVolume(volume).remove().catch(ignoreMissing);
    await this.networks.remove();
  }

  /** The head in the cluster host's namespace advertises the gateway's overlay address: the one providers reach. */
  private async ensureHead(image: string, gatewayAddress: string, rayAuthToken: string): Promise<void> {
    const head = await this.docker.createContainer({
      name: PLAYGROUND.head,
      Image: image,
      Entrypoint: ['ray'],
      Cmd: [...HEAD_START_ARGS, `--node-ip-address=${gatewayAddress}`],
      // A path, not the token: the sample job's `docker exec` inherits both and authenticates the same way.
      Env: ['RAY_AUTH_MODE=token', `RAY_AUTH_TOKEN_PATH=${HEAD_RAY_TOKEN_FILE.dir}/${HEAD_RAY_TOKEN_FILE.name}`],
      Labels: { [PLAYGROUND.label]: 'true' },
      // The head runs from the agent image, whose HEALTHCHECK asks the agent's status endpoint: not here.
      Healthcheck: { Test: ['NONE'] },
      HostConfig: {
        NetworkMode: `container:${PLAYGROUND.clusterHost}`,
        ShmSize: 512 * 1024 ** 2,
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        Init: true,
      },
    });
    await head.putArchive(
      tarFiles([
        { name: HEAD_RAY_TOKEN_FILE.name, content: rayAuthToken, mode: 0o600, uid: AGENT_UID, gid: AGENT_UID },
      ]),
      { path: HEAD_RAY_TOKEN_FILE.dir },
    );
    await head.start();
  }

  /** The cluster host's network namespace: the gateway's address on the cluster network, forwarding on, nothing running. */
  private async ensureClusterHost(image: string): Promise<void> {
    const host = await this.docker.createContainer({
      name: PLAYGROUND.clusterHost,
      Image: image,
      Entrypoint: ['sleep'],
      Cmd: ['infinity'],
      Labels: { [PLAYGROUND.label]: 'true' },
      HostConfig: {
        NetworkMode: PLAYGROUND.network,
        Sysctls: { 'net.ipv4.ip_forward': '1' },
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        ReadonlyRootfs: true,
        Init: true,
        RestartPolicy: { Name: 'unless-stopped' },
      },
      NetworkingConfig: {
        EndpointsConfig: { [PLAYGROUND.network]: { IPAMConfig: { IPv4Address: PLAYGROUND_NETWORKS.gatewayAddress } } },
      },
    });
    await host.start();
  }

  /**
   * The gateway from the manager's image, as an operator starts it (root, NET_ADMIN, the TUN device); returns its
   * overlay address once its interface is up. Its token file is put in before it starts.
   */
  private async ensureGateway(image: string, access: ManagerAccess): Promise<string> {
    const gateway = await this.docker.createContainer({
      name: PLAYGROUND.gateway,
      Image: image,
      User: '0',
      Cmd: [
        'gateway',
        '--manager',
        `https://${PLAYGROUND_NETWORKS.managerAddress}:8443`,
        '--manager-ca-file',
        '/tls/ca.crt',
        '--token-file',
        '/tls/gateway-token',
        '--endpoint',
        `${PLAYGROUND_NETWORKS.gatewayAddress}:${GATEWAY_DEFAULT_PORT}`,
        '--listen-port',
        String(GATEWAY_DEFAULT_PORT),
        '--data-dir',
        GATEWAY_DATA_DIR,
      ],
      Labels: { [PLAYGROUND.label]: 'true' },
      HostConfig: {
        NetworkMode: `container:${PLAYGROUND.clusterHost}`,
        Mounts: [{ Type: 'volume', Source: PLAYGROUND.gatewayVolume, Target: GATEWAY_DATA_DIR }],
        CapDrop: ['ALL'],
        CapAdd: ['NET_ADMIN'],
        Devices: [{ PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' }],
        SecurityOpt: ['no-new-privileges'],
        Init: true,
      },
    });
    await gateway.putArchive(
      tarFiles([
        { name: 'ca.crt', content: access.caPem, mode: 0o644, uid: 0, gid: 0 },
        { name: 'gateway-token', content: access.gatewayToken, mode: 0o600, uid: 0, gid: 0 },
      ]),
      { path: '/tls' },
    );
    await gateway.start();
    return this.overlayAddressOf(gateway);
  }

  /** Waits until the gateway has synced with the manager and brought up its interface; reads its address. */
  private async overlayAddressOf(gateway: Dockerode.Container): Promise<string> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const info = await gateway.inspect();
      if (!info.State.Running)
        throw new Error(
          `the playground's gateway exited (${info.State.ExitCode}); see docker logs ${PLAYGROUND.gateway}`,
        );
      const exec = await gateway.exec({
        Cmd: ['ip', '-4', '-o', 'addr', 'show', 'dev', OVERLAY_INTERFACE],
        AttachStdout: true,
        AttachStderr: true,
      });
      const output = await collect(this.docker, await exec.start({ hijack: true, stdin: false }));
      const address = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(output)?.[1];
      if (address) return address;
      if (Date.now() > deadline)
        throw new Error(
          `the playground's gateway did not bring up ${OVERLAY_INTERFACE}; see docker logs ${PLAYGROUND.gateway}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /** The manager gets its TLS files and tokens through the Docker API, so nothing is written on the host. */
  private async ensureManager(image: string): Promise<ManagerAccess> {
    await this.docker.getContainer(PLAYGROUND.manager).remove({ force: true }).catch(ignoreMissing);
    // The agent on the home network has no Docker DNS for the cluster's names: it dials the manager's address.
    const pki = await makePlaygroundPki([PLAYGROUND.manager, PLAYGROUND_NETWORKS.managerAddress, 'localhost']);
    const token = () => randomBytes(32).toString('base64url');
    const access = { caPem: pki.caPem, enrollmentToken: token(), gatewayToken: token(), rayAuthToken: token() };
    const manager = await this.docker.createContainer({
      name: PLAYGROUND.manager,
      Image: image,
      Cmd: [
        'serve',
        '--db',
        '/data/manager.db',
        '--cert',
        '/tls/server.crt',
        '--key',
        '/tls/server.key',
        '--port',
        '8443',
        '--enrollment-token-file',
        '/tls/enrollment-token',
        '--admin-token-file',
        '/tls/admin-token',
        '--gateway-token-file',
        '/tls/gateway-token',
        '--ray-auth-token-file',
        '/tls/ray-auth-token',
      ],
      Labels: { [PLAYGROUND.label]: 'true' },
      HostConfig: {
        NetworkMode: PLAYGROUND.network,
        Mounts: [{ Type: 'volume', Source: PLAYGROUND.managerVolume, Target: '/data' }],
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
      },
      NetworkingConfig: {
        EndpointsConfig: { [PLAYGROUND.network]: { IPAMConfig: { IPv4Address: PLAYGROUND_NETWORKS.managerAddress } } },
      },
    });
    const owner = { uid: MANAGER_UID, gid: MANAGER_UID };
    await manager.putArchive(
      tarFiles([
        { name: 'server.crt', content: pki.certPem, mode: 0o644, ...owner },
        { name: 'server.key', content: pki.keyPem, mode: 0o600, ...owner },
        { name: 'enrollment-token', content: access.enrollmentToken, mode: 0o600, ...owner },
        { name: 'admin-token', content: token(), mode: 0o600, ...owner },
        { name: 'gateway-token', content: access.gatewayToken, mode: 0o600, ...owner },
        { name: 'ray-auth-token', content: access.rayAuthToken, mode: 0o600, ...owner },
      ]),
      { path: '/tls' },
    );
    await manager.start();
    return access;
  }
}

/** What the manager was made with and the other parts need: its CA and the tokens. */
interface ManagerAccess {
  caPem: string;
  enrollmentToken: string;
  gatewayToken: string;
  rayAuthToken: string;
}

/** Everything an exec's hijacked stream prints (stdout and stderr together), until it ends. */
function collect(docker: Dockerode, stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    const sink = { write: (chunk: Buffer) => chunks.push(chunk) } as unknown as NodeJS.WritableStream;
    docker.modem.demuxStream(stream, sink, sink);
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('error', reject);
  });
}

function ignoreMissing(error: { statusCode?: number }): void {
  if (error.statusCode !== 404 && error.statusCode !== 304) throw error;
}
