import type Dockerode from 'dockerode';

/**
 * The playground's networks in the real shape: a "cluster" network (manager, WireGuard gateway, and the Ray head in
 * the gateway's network namespace) and a "home" network for the agent behind a router container that masquerades
 * home -> cluster and drops every new connection cluster -> home. The host routes nothing between Docker's bridge
 * networks and does not masquerade the home network, so the router is the agent's only way out and nothing on the
 * cluster side can reach the agent except through its WireGuard tunnel.
 */
export interface NetworkLayout {
  cluster: { name: string; subnet: string; ipRange: string };
  home: { name: string; subnet: string; ipRange: string };
  router: string;
  routerClusterAddress: string;
  routerHomeAddress: string;
  managerAddress: string;
  gatewayAddress: string;
}

export const PLAYGROUND_NETWORKS: NetworkLayout = {
  // Docker hands out addresses from the upper half only: the fixed ones below stay free.
  cluster: { name: 'ray-agent-playground', subnet: '10.213.100.0/24', ipRange: '10.213.100.128/25' },
  home: { name: 'ray-agent-playground-home', subnet: '10.213.101.0/24', ipRange: '10.213.101.128/25' },
  router: 'ray-agent-playground-router',
  routerClusterAddress: '10.213.100.2',
  routerHomeAddress: '10.213.101.2',
  /** Fixed, so the agent on the home network (no Docker DNS for the cluster's names) dials it by address. */
  managerAddress: '10.213.100.20',
  /** What the agent's tunnel dials over UDP. */
  gatewayAddress: '10.213.100.21',
};

/**
 * A home router's rules, for a container on both networks (env HOME_ADDRESS, CLUSTER_ADDRESS, HOME_SUBNET): FORWARD
 * drops by default, home -> cluster may open connections, replies come back through conntrack, and the router's own
 * cluster side accepts nothing new (like a home router's WAN port). Prints "router ready", then idles.
 */
export const ROUTER_SCRIPT = `set -eu
iface_of() { ip -o -4 addr show | awk -v a="$1/" 'index($4, a) == 1 { print $2 }'; }
home_if=$(iface_of "$HOME_ADDRESS")
cluster_if=$(iface_of "$CLUSTER_ADDRESS")
[ -n "$home_if" ] && [ -n "$cluster_if" ] || { echo "router: no interface for $HOME_ADDRESS or $CLUSTER_ADDRESS" >&2; exit 1; }
iptables -P FORWARD DROP
iptables -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
iptables -A FORWARD -i "$home_if" -o "$cluster_if" -m conntrack --ctstate NEW -j ACCEPT
iptables -t nat -A POSTROUTING -s "$HOME_SUBNET" -o "$cluster_if" -j MASQUERADE
iptables -A INPUT -i "$cluster_if" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
iptables -A INPUT -i "$cluster_if" -j DROP
echo "router ready: $home_if ($HOME_SUBNET) -> $cluster_if"
exec sleep infinity
`;

/**
 * Docker option for a home network: no masquerading by the host (not `--internal`, which Docker enforces in the
 * host's iptables, and with br_netfilter that also drops the bridged frames from a home container to its router).
 */
export const HOME_NETWORK_OPTIONS = { 'com.docker.network.bridge.enable_ip_masquerade': 'false' } as const;

export class PlaygroundNetworks {
  constructor(
    private readonly docker: Dockerode,
    private readonly label: string,
    /** Another layout lets a test run beside a person's playground. */
    private readonly layout: NetworkLayout = PLAYGROUND_NETWORKS,
  ) {}

  /** Both networks with their fixed subnets; a network of the same name with another subnet is made again. */
  async ensure(): Promise<void> {
    const { cluster, home } = this.layout;
    await this.ensureNetwork(cluster, {});
    await this.ensureNetwork(home, HOME_NETWORK_OPTIONS);
  }

  /** The router from `image` (one with sh, ip and iptables: the manager's image); made again each time. */
  async ensureRouter(image: string): Promise<void> {
    const n = this.layout;
    await this.docker.getContainer(n.router).remove({ force: true }).catch(ignoreMissing);
    const router = await this.docker.createContainer({
      name: n.router,
      Image: image,
      User: '0',
      Entrypoint: ['sh', '-c', ROUTER_SCRIPT],
      Cmd: [],
      Env: [
        `HOME_ADDRESS=${n.routerHomeAddress}`,
        `CLUSTER_ADDRESS=${n.routerClusterAddress}`,
        `HOME_SUBNET=${n.home.subnet}`,
      ],
      Labels: { [this.label]: 'true' },
      Healthcheck: { Test: ['NONE'] },
      HostConfig: {
        NetworkMode: n.cluster.name,
        CapDrop: ['ALL'],
        CapAdd: ['NET_ADMIN'],
        SecurityOpt: ['no-new-privileges'],
        Sysctls: { 'net.ipv4.ip_forward': '1' },
        Init: true,
        RestartPolicy: { Name: 'unless-stopped' },
      },
      NetworkingConfig: {
        EndpointsConfig: { [n.cluster.name]: { IPAMConfig: { IPv4Address: n.routerClusterAddress } } },
      },
    });
    await this.docker.getNetwork(n.home.name).connect({
      Container: n.router,
      EndpointConfig: { IPAMConfig: { IPv4Address: n.routerHomeAddress } },
    });
    await router.start();
    await waitUntil(`${n.router} to apply its rules`, 30_000, async () => {
      const info = await router.inspect();
      if (!info.State.Running)
        throw new Error(`${n.router} exited (${info.State.ExitCode}); see docker logs ${n.router}`);
      return (await logsOf(router)).includes('router ready');
    });
  }

  /**
   * Gives the owner of a network namespace on the home network (the agent's tunnel container) its default route via
   * the router, as a home router's DHCP would; Docker's own default route leads to the host, which drops it. Done by a
   * short-lived container in that namespace holding NET_ADMIN (from `image`, which has `ip`), so nothing runs on the
   * host and the tunnel container itself is left as the product makes it.
   */
  async routeViaRouter(container: string, image: string): Promise<void> {
    const helper = await this.docker.createContainer({
      Image: image,
      User: '0',
      Entrypoint: ['ip', 'route', 'replace', 'default', 'via', this.layout.routerHomeAddress],
      Cmd: [],
      Labels: { [this.label]: 'true' },
      HostConfig: {
        NetworkMode: `container:${container}`,
        CapDrop: ['ALL'],
        CapAdd: ['NET_ADMIN'],
        SecurityOpt: ['no-new-privileges'],
      },
    });
    try {
      await helper.start();
      const { StatusCode } = (await helper.wait()) as { StatusCode: number };
      if (StatusCode !== 0)
        throw new Error(`could not route ${container} via the playground's router: ${await logsOf(helper)}`);
    } finally {
      await helper.remove({ force: true }).catch(ignoreMissing);
    }
  }

  /** Removes the router and both networks (their other containers must be gone already). */
  async remove(): Promise<void> {
    const n = this.layout;
    await this.docker.getContainer(n.router).remove({ force: true }).catch(ignoreMissing);
    for (const name of [n.home.name, n.cluster.name]) await this.docker.getNetwork(name).remove().catch(ignoreMissing);
  }

  private async ensureNetwork(
    { name, subnet, ipRange }: { name: string; subnet: string; ipRange: string },
    options: Record<string, string>,
  ): Promise<void> {
    const existing = (await this.docker.listNetworks({ filters: { name: [name] } })).find((n) => n.Name === name);
    if (existing) {
      const config = existing.IPAM?.Config ?? [];
      if (config.some((c) => c.Subnet === subnet && c.IPRange === ipRange)) return;
      // An older playground's network (no fixed subnet): its containers are made again or moved by `up`.
      const network = this.docker.getNetwork(existing.Id);
      const info = await network.inspect();
      for (const id of Object.keys(info.Containers ?? {}))
        await network.disconnect({ Container: id, Force: true }).catch(ignoreMissing);
      await network.remove();
    }
    await this.docker.createNetwork({
      Name: name,
      Labels: { [this.label]: 'true' },
      IPAM: { Driver: 'default', Config: [{ Subnet: subnet, IPRange: ipRange }] },
      Options: options,
    });
  }
}

/** A container's output so far. Without a TTY, Docker frames it: an 8-byte header (stream, 0, 0, 0, length). */
async function logsOf(container: Dockerode.Container): Promise<string> {
  const framed = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
  const parts: Buffer[] = [];
  for (let at = 0; at + 8 <= framed.length; at += 8 + framed.readUInt32BE(at + 4))
    parts.push(framed.subarray(at + 8, at + 8 + framed.readUInt32BE(at + 4)));
  return Buffer.concat(parts).toString('utf8');
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

function ignoreMissing(error: { statusCode?: number }): void {
  if (error.statusCode !== 404 && error.statusCode !== 304) throw error;
}
