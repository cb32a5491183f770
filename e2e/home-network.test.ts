import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AGENT_IMAGE } from './support/cluster.js';
import {
  HARNESS_LABEL,
  type Home,
  HomeNetworks,
  inNetns,
  OWNER_PID_LABEL,
  removeLeftovers,
} from './support/home-network.js';
import { docker, run } from './support/run.js';

/**
 * The NAT the overlay tests stand on, checked with plain containers: a home container reaches the cluster network
 * only through its router, appears there as the router, and nothing on the cluster side can open a connection to it.
 */
const net = new HomeNetworks();
let home: Home;
const PORT = 7000;
const server = `ray-agent-e2e-server-${net.id}`;
const homeBox = `ray-agent-e2e-homebox-${net.id}`;
const serverAddress = net.cluster.address(10);
let homeAddress: string;

/** A TCP server that answers every connection with the peer address it sees. */
const ECHO_PEER = `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", ${PORT})); s.listen()
while True:
    c, peer = s.accept(); c.sendall((peer[0] + "\\n").encode()); c.close()
`;

/** Opens a TCP connection from inside a container; a refused or unanswered connection is a non-zero exit. */
function connectFrom(container: string, address: string, seconds = 10) {
  const script = `import socket; s = socket.create_connection(("${address}", ${PORT}), timeout=${seconds}); print(s.recv(64).decode().strip())`;
  return run('docker', ['exec', container, 'python3', '-c', script], { timeoutMs: (seconds + 30) * 1000 });
}

async function startEchoServer(name: string, network: string, address: string): Promise<void> {
  await docker(
    'run',
    '-d',
    '--name',
    name,
    ...net.labelFlags(),
    '--network',
    network,
    '--ip',
    address,
    '--cap-drop=ALL',
    '--security-opt=no-new-privileges',
    '--no-healthcheck',
    '--entrypoint',
    'python3',
    AGENT_IMAGE,
    '-c',
    ECHO_PEER,
  );
}

beforeAll(async () => {
  await net.create(1);
  home = net.homes[0] as Home;
  homeAddress = home.address(10);
  await startEchoServer(server, net.cluster.network, serverAddress);
  await startEchoServer(homeBox, home.network, homeAddress);
});

afterAll(async () => {
  await net.remove();
});

describe('a home network behind a NAT router', () => {
  test('a home container leaves its network only through its router', async () => {
    // Docker's own default route leads to the host, which routes nothing between its bridge networks.
    const before = await connectFrom(homeBox, serverAddress);
    expect(before.code).not.toBe(0);
    expect(before.stdout).toBe('');

    await net.routeViaRouter(homeBox, home);
    const routes = (await inNetns(homeBox, ['ip', '-4', 'route', 'show'])).stdout.trim().split('\n');
    expect(routes).toHaveLength(2);
    expect(routes).toContain(`default via ${home.routerHomeAddress} dev eth0 `);
    expect(routes.filter((route) => route.startsWith(`${home.subnet} dev eth0 `))).toHaveLength(1);
    const routed = await inNetns(homeBox, ['ip', 'route', 'get', serverAddress]);
    expect(routed.stdout).toContain(`via ${home.routerHomeAddress} `);
  });

  test('the home container reaches a server on the cluster network, which sees the router as the peer (NAT)', async () => {
    await net.routeViaRouter(homeBox, home);
    const answer = await connectFrom(homeBox, serverAddress);
    expect(answer.stderr).toBe('');
    expect(answer.stdout.trim()).toBe(home.routerClusterAddress);
  });

  test('nothing on the cluster network can open a connection to the home container', async () => {
    // The home container does listen: its neighbour on the home network, the router, is answered.
    const fromRouter = await run('docker', [
      'exec',
      home.router,
      'timeout',
      '30',
      'bash',
      '-c',
      `exec 3<>/dev/tcp/${homeAddress}/${PORT}; head -n1 <&3`,
    ]);
    expect(fromRouter.stdout.trim()).toBe(home.routerHomeAddress);

    // Docker's own routing on the cluster side: the host does not forward into an internal network.
    const direct = await connectFrom(server, homeAddress);
    expect(direct.code).not.toBe(0);
    expect(direct.stdout).toBe('');

    // Even a cluster container that knows the way (a route via the router) gets nothing: the router drops new
    // connections from the cluster side.
    const route = ['ip', 'route', 'add', home.subnet, 'via', home.routerClusterAddress];
    expect((await inNetns(server, route)).code).toBe(0);
    try {
      const viaRouter = await connectFrom(server, homeAddress);
      expect(viaRouter.code).not.toBe(0);
      expect(viaRouter.stdout).toBe('');
    } finally {
      await inNetns(server, ['ip', 'route', 'del', home.subnet]);
    }
  });
});

describe('leftovers', () => {
  test("a crashed run's containers, volumes and networks are removed by the next run; a live run's are kept", async () => {
    // The pid of a process that has exited: the owner of a crashed run.
    const gone = spawnSync('true').pid;
    const crashed = ['--label', `${HARNESS_LABEL}=crashed-${net.id}`, '--label', `${OWNER_PID_LABEL}=${gone}`];
    const alive = ['--label', `${HARNESS_LABEL}=alive-${net.id}`, '--label', `${OWNER_PID_LABEL}=${process.pid}`];
    const left = `ray-agent-e2e-crashed-${net.id}`;
    const kept = `ray-agent-e2e-alive-${net.id}`;
    await docker('network', 'create', ...crashed, left);
    await docker('volume', 'create', ...crashed, left);
    await docker('create', '--name', left, ...crashed, '--network', left, '--entrypoint', 'true', AGENT_IMAGE);
    await docker('network', 'create', ...alive, kept);
    try {
      await removeLeftovers();
      expect((await run('docker', ['container', 'inspect', left])).code).not.toBe(0);
      expect((await run('docker', ['volume', 'inspect', left])).code).not.toBe(0);
      expect((await run('docker', ['network', 'inspect', left])).code).not.toBe(0);
      expect((await run('docker', ['network', 'inspect', kept])).code).toBe(0);
    } finally {
      await run('docker', ['rm', '-f', left]);
      await run('docker', ['network', 'rm', left, kept]);
      await run('docker', ['volume', 'rm', left]);
    }
  });
});
