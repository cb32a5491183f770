import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { resolveDockerEndpointFromProcess } from '../controller/src/engine/docker-endpoint.js';
import { createDockerode } from '../controller/src/engine/docker-engine.js';
import { type NetworkLayout, PlaygroundNetworks } from '../controller/src/playground/playground-network.js';
import { AGENT_IMAGE } from './support/cluster.js';
import { ensureRouterImage, inNetns, ROUTER_IMAGE } from './support/home-network.js';
import { docker, run } from './support/run.js';

/**
 * The playground's networks as the controller makes them through the Docker API: the cluster and home networks,
 * the router, and the default route it gives the owner of the agent's network namespace. A layout of its own (names
 * and subnets), so it runs beside a person's playground; the tiny router image stands in for the manager's image
 * (both have sh, ip and iptables).
 */
const id = randomBytes(3).toString('hex');
const LABEL = 'io.ray-agent.e2e-playground-network';
const layout: NetworkLayout = {
  cluster: { name: `ray-agent-e2e-pgc-${id}`, subnet: '10.213.94.0/24', ipRange: '10.213.94.128/25' },
  home: { name: `ray-agent-e2e-pgh-${id}`, subnet: '10.213.95.0/24', ipRange: '10.213.95.128/25' },
  router: `ray-agent-e2e-pgr-${id}`,
  routerClusterAddress: '10.213.94.2',
  routerHomeAddress: '10.213.95.2',
  managerAddress: '10.213.94.20',
  gatewayAddress: '10.213.94.21',
};
const server = `ray-agent-e2e-pgs-${id}`;
const tunnel = `ray-agent-e2e-pgt-${id}`;
let networks: PlaygroundNetworks;

const ECHO_PEER = `
import socket
s = socket.socket(); s.bind(("0.0.0.0", 7000)); s.listen()
while True:
    c, peer = s.accept(); c.sendall((peer[0] + "\\n").encode()); c.close()
`;

function connectFrom(container: string, address: string) {
  const script = `import socket; s = socket.create_connection(("${address}", 7000), timeout=10); print(s.recv(64).decode().strip())`;
  return run('docker', ['exec', container, 'python3', '-c', script], { timeoutMs: 60_000 });
}

/** What a crashed run of this file left (its subnets are fixed, so two runs never overlap). */
async function removeLeftovers(): Promise<void> {
  const containers = (await docker('ps', '-aq', '--filter', `label=${LABEL}`)).split('\n').filter(Boolean);
  if (containers.length) await docker('rm', '-f', ...containers);
  const left = (await docker('network', 'ls', '-q', '--filter', `label=${LABEL}`)).split('\n').filter(Boolean);
  if (left.length) await docker('network', 'rm', ...left);
}

beforeAll(async () => {
  await removeLeftovers();
  await ensureRouterImage();
  networks = new PlaygroundNetworks(createDockerode(resolveDockerEndpointFromProcess()), LABEL, layout);
  await networks.ensure();
  await networks.ensureRouter(ROUTER_IMAGE);
  const box = ['-d', '--label', LABEL, '--cap-drop=ALL', '--no-healthcheck', '--entrypoint', 'python3'];
  await docker(
    'run',
    '--name',
    server,
    ...box,
    '--network',
    layout.cluster.name,
    '--ip',
    layout.managerAddress,
    AGENT_IMAGE,
    '-c',
    ECHO_PEER,
  );
  // Like the tunnel container: on the home network with an address Docker hands out.
  await docker('run', '--name', tunnel, ...box, '--network', layout.home.name, AGENT_IMAGE, '-c', ECHO_PEER);
});

afterAll(async () => {
  await run('docker', ['rm', '-f', server, tunnel]);
  await networks?.remove();
});

describe("the playground's networks", () => {
  test('a second ensure adopts both networks; Docker hands out addresses only above the fixed ones', async () => {
    const before = await docker('network', 'inspect', '-f', '{{.Id}}', layout.cluster.name, layout.home.name);
    await networks.ensure();
    expect(await docker('network', 'inspect', '-f', '{{.Id}}', layout.cluster.name, layout.home.name)).toBe(before);
    const address = await docker(
      'inspect',
      '-f',
      `{{(index .NetworkSettings.Networks "${layout.home.name}").IPAddress}}`,
      tunnel,
    );
    expect(Number(address.split('.')[3])).toBeGreaterThanOrEqual(128);
  });

  test('routed via the router, the home container reaches the cluster as the router; the cluster cannot reach it', async () => {
    await networks.routeViaRouter(tunnel, ROUTER_IMAGE);
    const routes = (await inNetns(tunnel, ['ip', '-4', 'route', 'show'])).stdout;
    expect(routes).toContain(`default via ${layout.routerHomeAddress} dev eth0`);
    const answer = await connectFrom(tunnel, layout.managerAddress);
    expect(answer.stdout.trim()).toBe(layout.routerClusterAddress);

    const home = await docker(
      'inspect',
      '-f',
      `{{(index .NetworkSettings.Networks "${layout.home.name}").IPAddress}}`,
      tunnel,
    );
    const inbound = await connectFrom(server, home);
    expect(inbound.code).not.toBe(0);
    expect(inbound.stdout).toBe('');
    // The route's helper container is gone again; the router is the only one left from that image.
    const left = await docker(
      'ps',
      '-a',
      '--filter',
      `label=${LABEL}`,
      '--filter',
      `ancestor=${ROUTER_IMAGE}`,
      '--format',
      '{{.Names}}',
    );
    expect(left).toBe(layout.router);
  });

  test('remove takes the router and both networks away', async () => {
    await run('docker', ['rm', '-f', server, tunnel]);
    await networks.remove();
    expect((await run('docker', ['container', 'inspect', layout.router])).code).not.toBe(0);
    for (const name of [layout.cluster.name, layout.home.name])
      expect((await run('docker', ['network', 'inspect', name])).code).not.toBe(0);
  });
});
