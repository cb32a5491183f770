import { AGENT_ENV, DEFAULT_OVERLAY_NETWORK, TUNNEL_PRIVATE_KEY_FILE } from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OverlayCluster, type OverlayProvider } from './support/overlay-cluster.js';
import { docker, lastJson, run, waitFor } from './support/run.js';

/**
 * A provider behind a real NAT contributes to a cluster that cannot reach it: the tunnel container dials out to
 * the gateway, the agent joins the head over the overlay with Ray's token authentication on, and every Ray port of
 * the provider is reachable only through the tunnel.
 */
const cluster = new OverlayCluster();
let provider: OverlayProvider;
let providerId: string;
let overlayAddress: string;
const NODE_MANAGER_PORT = AGENT_ENV.RAY_NODE_MANAGER_PORT.default;
/** The manager runs with its default overlay, a /16. */
const OVERLAY_PREFIX = `${DEFAULT_OVERLAY_NETWORK.split('.').slice(0, 2).join('.')}.`;

/** Runs N tasks pinned to the provider; each sleeps, then reports the node and the address it ran on. */
function pinnedTasks(count: number, seconds: number): string {
  return `
import json, time, ray
ray.init(address="auto", logging_level="ERROR")
@ray.remote(num_cpus=0.5, resources={"provider:${providerId}": 0.01})
def work(i):
    time.sleep(${seconds})
    return [ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()]
head = ray.get_runtime_context().get_node_id()
print(json.dumps({"head": head, "ran": ray.get([work.remote(i) for i in range(${count})])}))
`;
}

beforeAll(async () => {
  await cluster.start(1);
  provider = await cluster.startProvider(0);
  const status = await provider.waitForStatus('contributing', (s) => s.state === 'contributing', 240_000);
  providerId = status.registration.providerId ?? '';
  overlayAddress = status.tunnel?.address ?? '';
});

afterAll(async () => {
  await cluster.stop();
});

describe('a provider behind a NAT, over the overlay', () => {
  test('the tunnel is up and the manager lists the provider at its overlay address', async () => {
    const status = await provider.status();
    expect(status.tunnel).toMatchObject({
      state: 'up',
      gatewayEndpoint: `${cluster.gatewayAddress}:51820`,
      problem: null,
    });
    expect(status.tunnel?.lastHandshakeAt).not.toBeNull();
    expect(overlayAddress.startsWith(OVERLAY_PREFIX)).toBe(true);
    expect(overlayAddress).not.toBe(cluster.gatewayOverlayAddress);
    expect(status.ray.state).toBe('joined');
    const listed = await waitFor(
      'the manager to list the tunnel as up, with the gateway having seen the peer',
      async () => {
        const found = (await cluster.providers()).find((p) => p.providerId === providerId);
        return found?.tunnel?.state === 'up' && found.gatewayPeer?.lastHandshakeAt ? found : undefined;
      },
      60_000,
    );
    expect(listed.overlayAddress).toBe(overlayAddress);
  });

  test("the head cannot open a TCP connection to the provider's home address, only to its overlay address", async () => {
    // Something does listen there: the router, the provider's neighbour on its home network, is answered.
    const fromRouter = await run('docker', [
      'exec',
      provider.home.router,
      'timeout',
      '30',
      'bash',
      '-c',
      `exec 3<>/dev/tcp/${provider.homeAddress}/${NODE_MANAGER_PORT} && echo connected`,
    ]);
    expect(fromRouter.stdout.trim()).toBe('connected');

    const home = await cluster.connectFromHead(provider.homeAddress, NODE_MANAGER_PORT);
    expect(home.code).not.toBe(0);
    expect(home.stdout).toBe('');

    const overlay = await cluster.connectFromHead(overlayAddress, NODE_MANAGER_PORT);
    expect(overlay.stderr).toBe('');
    expect(overlay.stdout.trim()).toBe('connected');
  });

  test('N tasks pinned to the provider run over the overlay; the status shows N running, then 0', async () => {
    const count = 4;
    const driver = cluster.driver(pinnedTasks(count, 20));
    const busy = await provider.waitForStatus(`${count} running tasks`, (s) => s.tasks.running === count, 120_000);
    expect(busy.tasks.running).toBe(count);
    expect(busy.tunnel?.state).toBe('up');
    const result = await driver;
    expect(result.code, result.stderr).toBe(0);
    const { head, ran } = lastJson<{ head: string; ran: [string, string][] }>(result.stdout);
    expect(ran).toHaveLength(count);
    expect(new Set(ran.map(([node]) => node)).size).toBe(1);
    expect(ran[0]?.[0]).not.toBe(head);
    // Ray advertises the overlay address, never the home one.
    expect(new Set(ran.map(([, address]) => address))).toEqual(new Set([overlayAddress]));
    const idle = await provider.waitForStatus('0 running tasks', (s) => s.tasks.running === 0, 60_000);
    expect(idle.tasks.running).toBe(0);
  });

  test("a Ray task on the provider cannot read the tunnel's private key", async () => {
    const result = await cluster.driver(`
import ray
ray.init(address="auto", logging_level="ERROR")
@ray.remote(num_cpus=0.5, resources={"provider:${providerId}": 0.01})
def peek():
    try:
        open("${TUNNEL_PRIVATE_KEY_FILE}").read()
        return "read"
    except PermissionError:
        return "denied"
print(ray.get(peek.remote()))
`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n').pop()).toBe('denied');
  });

  test('only the tunnel container holds NET_ADMIN, and no container of the system has a secret in its Env', async () => {
    const [tunnel, agent] = JSON.parse(await docker('inspect', provider.tunnel, provider.name)) as Inspect[];
    // Docker stores `--cap-add NET_ADMIN` as CAP_NET_ADMIN.
    const caps = (list: string[] | null | undefined) => (list ?? []).map((cap) => cap.replace(/^CAP_/, ''));
    expect(caps(tunnel?.HostConfig.CapAdd)).toEqual(['NET_ADMIN']);
    expect(tunnel?.HostConfig.CapDrop).toEqual(['ALL']);
    expect(caps(agent?.HostConfig.CapAdd)).toEqual([]);
    expect(agent?.HostConfig.CapDrop).toEqual(['ALL']);
    // What the processes really hold: NET_ADMIN (bit 12) alone in the tunnel container, nothing in the agent's.
    const effective = async (container: string) =>
      BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(await docker('exec', container, 'cat', '/proc/1/status'))?.[1]}`);
    expect(await effective(provider.tunnel)).toBe(1n << 12n);
    expect(await effective(provider.name)).toBe(0n);
    expect(agent?.Config.User).toBe('1000:1000');
    expect(agent?.HostConfig.NetworkMode).toBe(`container:${tunnel?.Id}`);

    const all = JSON.parse(
      await docker('inspect', provider.tunnel, provider.name, cluster.head, cluster.gateway, cluster.manager),
    ) as Inspect[];
    for (const container of all) {
      const env = container.Config.Env.join('\n');
      for (const secret of cluster.secrets) expect(env, container.Name).not.toContain(secret);
      expect(env, container.Name).not.toMatch(/^(AGENT_TOKEN|RAY_AUTH_TOKEN)=/m);
    }
  });
});

interface Inspect {
  Id: string;
  Name: string;
  Config: { Env: string[]; User: string };
  HostConfig: { CapAdd: string[] | null; CapDrop: string[] | null; NetworkMode: string };
}
