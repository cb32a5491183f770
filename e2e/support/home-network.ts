import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '@ray-agent/controller/process-alive';
import { HOME_NETWORK_OPTIONS, ROUTER_SCRIPT } from '../../controller/src/playground/playground-network.js';
import { docker, mustRun, type RunResult, run, waitFor } from './run.js';

/**
 * The real shape of a provider's network, made from Docker networks and one router container per home: a "cluster"
 * network (the gateway, the head in the gateway's network namespace, the manager) and, per provider, a "home" network
 * behind a router that masquerades home -> cluster and drops every new connection cluster -> home. Nothing on the
 * cluster side has a route to a home network; a home container leaves it only through its router.
 *
 * Addresses: .1 of every subnet is Docker's bridge on the host; a home's router is .2 on its home network and
 * .(2 + home index) on the cluster network; tests place their own containers at .10 and above.
 */

/** Every container, network and volume the harness makes carries it (value: the run's id). */
export const HARNESS_LABEL = 'io.ray-agent.e2e-harness';
/** The process that made it: a run finds what a crashed run left behind by a process that is gone. */
export const OWNER_PID_LABEL = 'io.ray-agent.e2e-harness.pid';

/** A tiny image with iptables and iproute2, built here when missing (there is no registry to pull from). */
export const ROUTER_IMAGE = process.env.ROUTER_IMAGE ?? 'ray-agent-e2e-router:dev';
const ROUTER_DOCKERFILE = [
  'FROM debian:bookworm-slim',
  'RUN apt-get update && apt-get install -y --no-install-recommends iptables iproute2 && rm -rf /var/lib/apt/lists/*',
  '',
].join('\n');

/**
 * /24s of 10.213.0.0/16 that nothing else on this machine uses: scripts/fresh-setup-check.sh takes 79-82, the test
 * engine of controller/test/support/second-dockerd.ts 77, e2e/playground-network.test.ts 94-95, the benchmarks'
 * overlay suite 96-98 (bench/suites/overlay.ts), the playground 100-101 (PLAYGROUND_NETWORKS).
 */
const CLUSTER_PREFIX = '10.213.90';
const HOME_PREFIXES = ['10.213.91', '10.213.92', '10.213.93'] as const;
const ARTIFACTS = join(import.meta.dirname, '..', 'artifacts');

export interface Home {
  readonly index: number;
  /** The Docker network: the host neither routes it to the cluster network nor masquerades it. */
  readonly network: string;
  readonly subnet: string;
  readonly router: string;
  readonly routerHomeAddress: string;
  /** The address every connection from this home appears to come from on the cluster network. */
  readonly routerClusterAddress: string;
  address(host: number): string;
}

/** The first three octets of the cluster network's /24 and of each home's. */
export interface Subnets {
  cluster: string;
  homes: readonly string[];
}
export const E2E_SUBNETS: Subnets = { cluster: CLUSTER_PREFIX, homes: HOME_PREFIXES };

export class HomeNetworks {
  readonly id = randomBytes(3).toString('hex');
  readonly cluster: { network: string; subnet: string; address: (host: number) => string };
  readonly homes: Home[] = [];

  constructor(private readonly subnets: Subnets = E2E_SUBNETS) {
    const prefix = subnets.cluster;
    this.cluster = {
      network: `ray-agent-e2e-cluster-${this.id}`,
      subnet: `${prefix}.0/24`,
      address: (host: number) => `${prefix}.${host}`,
    };
  }

  /** `docker run`/`create` flags that mark a container or volume as this run's, for removal. */
  labelFlags(): string[] {
    return ['--label', `${HARNESS_LABEL}=${this.id}`, '--label', `${OWNER_PID_LABEL}=${process.pid}`];
  }

  /** Makes the cluster network and `homeCount` homes with their routers; removes everything again if a step fails. */
  async create(homeCount: number): Promise<void> {
    if (homeCount < 1 || homeCount > this.subnets.homes.length)
      throw new Error(`homeCount must be 1 to ${this.subnets.homes.length}, got ${homeCount}`);
    try {
      await removeLeftovers();
      await ensureRouterImage();
      await this.createNetwork(this.cluster.network, this.cluster.subnet, false);
      for (let index = 0; index < homeCount; index++) await this.createHome(index);
    } catch (error) {
      await this.remove();
      throw error;
    }
  }

  /**
   * Gives a home container (the owner of a provider's network namespace) its default route via the home's router,
   * as a home router's DHCP would (Docker's default route, via the host, leads nowhere: the host drops it).
   */
  async routeViaRouter(container: string, home: Home): Promise<void> {
    const result = await inNetns(container, ['ip', 'route', 'replace', 'default', 'via', home.routerHomeAddress]);
    if (result.code !== 0) throw new Error(`${container}: no default route via ${home.router}: ${result.stderr}`);
  }

  /** Removes every container and volume labelled with this run's id, then its networks; keeps the containers' logs. */
  async remove(): Promise<void> {
    await removeLabelled(`${HARNESS_LABEL}=${this.id}`);
  }

  private async createHome(index: number): Promise<void> {
    const prefix = this.subnets.homes[index] as string;
    const home: Home = {
      index,
      network: `ray-agent-e2e-home${index}-${this.id}`,
      subnet: `${prefix}.0/24`,
      router: `ray-agent-e2e-router${index}-${this.id}`,
      routerHomeAddress: `${prefix}.2`,
      routerClusterAddress: this.cluster.address(2 + index),
      address: (host: number) => `${prefix}.${host}`,
    };
    this.homes.push(home);
    await this.createNetwork(home.network, home.subnet, true);
    await docker(
      'create',
      '--name',
      home.router,
      ...this.labelFlags(),
      // Root for iptables, also from an image whose default user is not (the manager's, which has the same tools).
      '--user',
      '0',
      '--init',
      '--cap-drop=ALL',
      '--cap-add=NET_ADMIN',
      '--sysctl',
      'net.ipv4.ip_forward=1',
      '--network',
      this.cluster.network,
      '--ip',
      home.routerClusterAddress,
      '-e',
      `HOME_ADDRESS=${home.routerHomeAddress}`,
      '-e',
      `CLUSTER_ADDRESS=${home.routerClusterAddress}`,
      '-e',
      `HOME_SUBNET=${home.subnet}`,
      '--entrypoint',
      'sh',
      ROUTER_IMAGE,
      '-c',
      ROUTER_SCRIPT,
    );
    await docker('network', 'connect', '--ip', home.routerHomeAddress, home.network, home.router);
    await docker('start', home.router);
    await waitFor(
      `${home.router} to apply its rules`,
      async () => {
        const logs = await run('docker', ['logs', home.router]);
        if (logs.stdout.includes('router ready')) return true;
        const running = await docker('inspect', '-f', '{{.State.Running}}', home.router);
        if (running !== 'true') throw new Error(`${home.router} exited: ${logs.stderr || logs.stdout}`);
        return undefined;
      },
      30_000,
    );
  }

  private async createNetwork(name: string, subnet: string, home: boolean): Promise<void> {
    await docker(
      'network',
      'create',
      ...this.labelFlags(),
      // The host neither masquerades a home network nor routes it (not `--internal`: see HOME_NETWORK_OPTIONS).
      ...(home ? Object.entries(HOME_NETWORK_OPTIONS).flatMap(([key, value]) => ['-o', `${key}=${value}`]) : []),
      '--subnet',
      subnet,
      name,
    );
  }
}

/** Runs a command from the host inside a container's network namespace (the host's `ip`, as root). */
export async function inNetns(container: string, command: string[]): Promise<RunResult> {
  const pid = await docker('inspect', '-f', '{{.State.Pid}}', container);
  if (!/^[1-9]\d*$/.test(pid)) throw new Error(`${container} is not running (pid ${pid})`);
  return run('nsenter', ['-t', pid, '-n', ...command]);
}

export async function ensureRouterImage(): Promise<void> {
  if ((await run('docker', ['image', 'inspect', ROUTER_IMAGE])).code === 0) return;
  await mustRun('env', ['DOCKER_BUILDKIT=0', 'docker', 'build', '-q', '-t', ROUTER_IMAGE, '-'], {
    input: ROUTER_DOCKERFILE,
    timeoutMs: 600_000,
  });
}

/** Removes what runs of this harness left behind whose process is gone (a crashed or killed run). */
export async function removeLeftovers(): Promise<void> {
  const owners = new Set<string>();
  for (const kind of [
    ['ps', '-a'],
    ['network', 'ls'],
    ['volume', 'ls'],
  ]) {
    const listed = await docker(
      ...kind,
      '--filter',
      `label=${HARNESS_LABEL}`,
      '--format',
      `{{.Label "${HARNESS_LABEL}"}} {{.Label "${OWNER_PID_LABEL}"}}`,
    );
    for (const line of listed.split('\n').filter(Boolean)) {
      const [id, pid] = line.split(' ');
      if (id && !processAlive(Number(pid))) owners.add(id);
    }
  }
  for (const id of owners) await removeLabelled(`${HARNESS_LABEL}=${id}`);
}

async function removeLabelled(label: string): Promise<void> {
  const networks = (await docker('network', 'ls', '-q', '--filter', `label=${label}`)).split('\n').filter(Boolean);
  // A container on one of these private networks belongs to the run, labelled or not (or the network stays).
  const attached = await Promise.all(
    networks.map((network) =>
      docker('network', 'inspect', '-f', '{{range $id, $c := .Containers}}{{$id}} {{end}}', network),
    ),
  );
  const labelled = (await docker('ps', '-aq', '--no-trunc', '--filter', `label=${label}`)).split('\n');
  const containers = [...new Set([...labelled, ...attached.join(' ').split(' ')].filter(Boolean))];
  if (containers.length) {
    mkdirSync(ARTIFACTS, { recursive: true });
    for (const id of containers) {
      const name = (await run('docker', ['inspect', '-f', '{{.Name}}', id])).stdout.trim().replace(/^\//, '') || id;
      const logs = await run('docker', ['logs', id]);
      writeFileSync(join(ARTIFACTS, `${name}.log`), logs.stdout + logs.stderr);
    }
    await run('docker', ['rm', '-f', '-v', ...containers]);
  }
  const volumes = (await docker('volume', 'ls', '-q', '--filter', `label=${label}`)).split('\n').filter(Boolean);
  if (volumes.length) await run('docker', ['volume', 'rm', '-f', ...volumes]);
  if (networks.length) await mustRun('docker', ['network', 'rm', ...networks]);
}

/**
 * Opens a TCP connection from inside a container's network namespace (the host's bash, as root), so it works in a
 * namespace whose own container has no shell tools; resolves true if it connected within `seconds`.
 */
export async function connectsFromNetns(
  container: string,
  address: string,
  port: number,
  seconds = 10,
): Promise<boolean> {
  const result = await inNetns(container, [
    'timeout',
    String(seconds),
    'bash',
    '-c',
    `exec 3<>/dev/tcp/${address}/${port} && echo connected`,
  ]);
  return result.code === 0 && result.stdout.trim() === 'connected';
}
