// Overlay against direct mode (issue 9), same head, same image, same run.
//
// This suite runs OUTSIDE the bench's loopback-only holder namespace: it needs real separate network namespaces
// (each provider on its own home network behind a masquerading router, a WireGuard gateway), which it makes with
// the end-to-end harness (e2e/support/overlay-cluster.ts: Docker networks and containers of its own). It talks only
// to the containers it creates: the manager, gateway and head on the harness's cluster network, the providers, and
// their status endpoints published on 127.0.0.1.
//
// Each repetition runs both modes back to back in alternating order, each with two fresh providers A and B:
//   overlay: tunnel + agent containers on two home networks behind NATs, joined over the gateway;
//   direct:  the agent container alone on the cluster network (no tunnel volume, so the agent stays direct), with a
//            route to the overlay network via the gateway's cluster address, since the head advertises its overlay
//            address (an operator's LAN routing that network to the head host).
// Measured: `docker run` to status `contributing` (A and B), CPU-bound and tiny task throughput on A, objects put
// on B consumed by a task on A, and raw TCP B -> A (iperf3 from Debian, in the two providers' namespaces) along the
// same path as the objects: over the overlay B -> gateway -> A, through three WireGuard hops' crypto.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_OVERLAY_NETWORK, STATE_DIR, type StatusDocument } from '@ray-agent/protocol';
import { AGENT_IMAGE, Agent0, HARDENED, publishedPort } from '../../../e2e/support/cluster.js';
import { inNetns, type Subnets } from '../../../e2e/support/home-network.js';
import { OverlayCluster } from '../../../e2e/support/overlay-cluster.js';
import { Driver } from '../../lib/cluster.js';
import type { SuiteContext } from '../../lib/suite.js';
import { BENCH_DIR, docker, exited, log, mustRun, run, sleep } from '../../lib/util.js';
import type { OverlayData, OverlaySession, OverlaySettings } from './schema.js';

type Mode = OverlaySession['mode'];
const IPERF_PORT = 5201;
/** /24s of their own (e2e/support/home-network.ts lists who takes which): the suite can run beside the e2e tests. */
const BENCH_SUBNETS: Subnets = { cluster: '10.213.96', homes: ['10.213.97', '10.213.98'] };

type Join = OverlaySession['joins'][number];

interface Provider {
  agent: Agent0;
  /** The containers and volumes to remove afterwards. */
  containers: string[];
  volumes: string[];
  /** The container that owns the provider's network namespace, and the address the other provider reaches it at. */
  netnsOwner: string;
  address: string;
  join: Join;
}

/** Polls the status endpoint every 100 ms from `startedAt` until `contributing`; notes when the tunnel came up. */
async function timeJoin(
  agent: Agent0,
  startedAt: number,
  overlay: boolean,
): Promise<Join & { status: StatusDocument }> {
  let tunnelUpAt: number | null = null;
  const deadline = startedAt + 240_000;
  while (Date.now() < deadline) {
    const status = await agent.status().catch(() => undefined);
    const at = Date.now();
    if (status?.tunnel?.state === 'up' && tunnelUpAt === null) tunnelUpAt = at;
    if (status?.state === 'contributing' && (!overlay || tunnelUpAt !== null))
      return {
        contributingSeconds: (at - startedAt) / 1000,
        tunnelUpSeconds: tunnelUpAt === null ? null : (tunnelUpAt - startedAt) / 1000,
        status,
      };
    await sleep(100);
  }
  throw new Error(`${agent.name} did not reach contributing within 240 s`);
}

async function startOverlayProvider(cluster: OverlayCluster, home: number): Promise<Provider> {
  let startedAt = 0;
  const provider = await cluster.startProvider(home, 10, () => {
    startedAt = Date.now();
  });
  const joined = await timeJoin(provider, startedAt, true);
  const address = joined.status.tunnel?.address;
  if (!address) throw new Error(`${provider.name}: contributing without an overlay address`);
  return {
    agent: provider,
    containers: [provider.name, provider.tunnel],
    volumes: [provider.volume, `${provider.name}-tunnel`],
    netnsOwner: provider.tunnel,
    address,
    join: { contributingSeconds: joined.contributingSeconds, tunnelUpSeconds: joined.tunnelUpSeconds },
  };
}

/** The agent container alone on the cluster network, as a direct-mode provider runs it; the same limits. */
async function startDirectProvider(cluster: OverlayCluster, name: string, host: number): Promise<Provider> {
  const volume = `${name}-state`;
  const address = cluster.net.cluster.address(host);
  await docker('volume', 'create', ...cluster.net.labelFlags(), volume);
  const startedAt = Date.now();
  await docker(
    'run',
    '-d',
    '--name',
    name,
    ...cluster.net.labelFlags(),
    '--network',
    cluster.net.cluster.network,
    '--ip',
    address,
    '-p',
    '127.0.0.1::8765',
    '--shm-size=1g',
    '--stop-timeout=60',
    ...HARDENED,
    '-v',
    `${cluster.pki.dir}:/certs:ro`,
    '-v',
    `${volume}:${STATE_DIR}`,
    '-e',
    `RAY_HEAD=${cluster.gatewayOverlayAddress}:6379`,
    '-e',
    `MANAGER_URL=https://${cluster.managerAddress}:8443/api/register`,
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
  // Set from the host while the agent is still starting Node.js (it contacts nothing for about a second).
  const routed = await inNetns(name, ['ip', 'route', 'add', DEFAULT_OVERLAY_NETWORK, 'via', cluster.gatewayAddress]);
  if (routed.code !== 0) throw new Error(`${name}: no route to the overlay network: ${routed.stderr}`);
  const agent = new Agent0(name, volume, await publishedPort(name, 8765));
  const joined = await timeJoin(agent, startedAt, false);
  return {
    agent,
    containers: [name],
    volumes: [volume],
    netnsOwner: name,
    address,
    join: { contributingSeconds: joined.contributingSeconds, tunnelUpSeconds: null },
  };
}

/** Keeps the containers' logs in the run's log directory (kept with BENCH_KEEP=1 or on failure), then removes them. */
async function removeProvider(provider: Provider, tmp: string, session: string): Promise<void> {
  for (const container of provider.containers) {
    const logs = await run('docker', ['logs', container]);
    writeFileSync(join(tmp, `${session}-${container}.log`), logs.stdout + logs.stderr);
  }
  await run('docker', ['rm', '-f', '-v', ...provider.containers]);
  await run('docker', ['volume', 'rm', '-f', ...provider.volumes]);
}

async function netnsPid(container: string): Promise<string> {
  return docker('inspect', '-f', '{{.State.Pid}}', container);
}

/** iperf3 from `from`'s namespace, the data flowing `to` -> `from` (`-R`), as the objects do. */
async function tcpThroughput(to: Provider, from: Provider, seconds: number): Promise<OverlaySession['tcp']> {
  const server: ChildProcess = spawn(
    'nsenter',
    ['-t', await netnsPid(to.netnsOwner), '-n', 'iperf3', '-s', '-1', '-p', String(IPERF_PORT)],
    { stdio: 'ignore' },
  );
  try {
    const fromPid = await netnsPid(from.netnsOwner);
    for (let attempt = 0; ; attempt++) {
      await sleep(300);
      const args = ['-t', fromPid, '-n', 'iperf3', '-c', to.address, '-p', String(IPERF_PORT), '-R', '-J'];
      const result = await run('nsenter', [...args, '-t', String(seconds)], { timeoutMs: (seconds + 30) * 1000 });
      if (result.code === 0) {
        const end = (JSON.parse(result.stdout) as IperfJson).end;
        return {
          seconds: end.sum_received.seconds,
          mbPerSecond: end.sum_received.bits_per_second / 8 / 1e6,
          retransmits: end.sum_sent.retransmits ?? null,
        };
      }
      if (attempt >= 10) throw new Error(`iperf3 to ${to.address}: ${result.stdout || result.stderr}`);
    }
  } finally {
    server.kill('SIGTERM');
    await Promise.race([exited(server), sleep(2000)]);
  }
}

interface IperfJson {
  end: {
    sum_received: { seconds: number; bits_per_second: number };
    sum_sent: { retransmits?: number };
  };
}

export async function runOverlay(context: SuiteContext, settings: OverlaySettings): Promise<OverlayData> {
  const tcpTool = await mustRun('iperf3', ['--version']).then(
    (text) => text.split('\n')[0] ?? 'iperf3',
    () => {
      throw new Error('the overlay suite needs iperf3 on the host (Debian: apt-get install iperf3)');
    },
  );
  const tmp = context.tmp;
  const cluster = new OverlayCluster({ subnets: BENCH_SUBNETS });
  const sessions: OverlaySession[] = [];
  let driver: Driver | undefined;
  log('overlay: starting the manager, gateway and head (two home networks behind NAT routers)');
  await cluster.start(2);
  try {
    await docker('cp', `${join(BENCH_DIR, 'lib')}/.`, `${cluster.head}:/bench`);
    driver = new Driver(cluster.head, join(tmp, 'overlay-driver.log'), `${cluster.gatewayOverlayAddress}:6379`);
    const ready = await driver.ready();
    log(`overlay: driver on the head: Python ${String(ready.python)}, Ray ${String(ready.ray)}`);
    const seen = new Set<string>();
    const nodeOf = async () => {
      const node = await (driver as Driver).send({ cmd: 'wait_node', exclude: [...seen], timeout: 120 });
      seen.add(node.nodeId as string);
      return node.nodeId as string;
    };

    const session = async (mode: Mode, rep: number, position: number): Promise<OverlaySession> => {
      log(`overlay rep ${rep + 1}: ${mode}`);
      const providers: Provider[] = [];
      const d = driver as Driver;
      try {
        const start = (which: number) =>
          mode === 'overlay'
            ? startOverlayProvider(cluster, which)
            : startDirectProvider(cluster, `ray-bench-overlay-${cluster.id}-direct${which}`, 30 + which);
        // One after the other: each join is timed on a machine with no other start going on.
        const a = await start(0);
        providers.push(a);
        const aNode = await nodeOf();
        const b = await start(1);
        providers.push(b);
        const bNode = await nodeOf();
        log(`  joined in ${a.join.contributingSeconds.toFixed(2)} s and ${b.join.contributingSeconds.toFixed(2)} s`);

        // Warm-up: workers start, functions are exported, the object managers meet.
        await d.send({ cmd: 'cpu', nodeId: aNode, tasks: 2, loops: Math.round(settings.cpu.loops / 20) });
        await d.send({ cmd: 'tiny', nodeId: aNode, tasks: 50 });
        await d.send({ cmd: 'transfer', fromNodeId: bNode, toNodeId: aNode, bytes: 1024 ** 2, reps: 1 });

        const cpu: OverlaySession['cpu'] = [];
        const tiny: OverlaySession['tiny'] = [];
        for (let i = 0; i < Math.max(settings.cpu.batches, settings.tiny.batches); i++) {
          if (i < settings.cpu.batches) {
            const answer = await d.send({
              cmd: 'cpu',
              nodeId: aNode,
              tasks: settings.cpu.tasks,
              loops: settings.cpu.loops,
            });
            const taskCpu = answer.taskCpu as number[];
            cpu.push({
              tasks: answer.tasks as number,
              elapsed: answer.elapsed as number,
              perSecond: answer.perSecond as number,
              cpuPerTask: taskCpu.reduce((x, y) => x + y, 0) / taskCpu.length,
            });
          }
          if (i < settings.tiny.batches) {
            const answer = await d.send({ cmd: 'tiny', nodeId: aNode, tasks: settings.tiny.tasks });
            tiny.push({
              tasks: answer.tasks as number,
              elapsed: answer.elapsed as number,
              perSecond: answer.perSecond as number,
            });
          }
        }
        const moved = await d.send({ cmd: 'transfer', fromNodeId: bNode, toNodeId: aNode, ...settings.transfer });
        const transfer = {
          bytes: settings.transfer.bytes,
          mbPerSecond: (moved.transfers as Array<{ mbPerSecond: number }>).map((t) => t.mbPerSecond),
        };
        const tcp = await tcpThroughput(b, a, settings.tcpSeconds);
        log(
          `  cpu ${cpu.map((x) => x.perSecond.toFixed(2)).join(', ')} tasks/s; tiny ${tiny.map((x) => x.perSecond.toFixed(0)).join(', ')} tasks/s; objects ${transfer.mbPerSecond.map((x) => x.toFixed(0)).join(', ')} MB/s; TCP ${tcp.mbPerSecond.toFixed(0)} MB/s`,
        );
        return { mode, rep, position, joins: [a.join, b.join], cpu, tiny, transfer, tcp };
      } finally {
        for (const provider of providers) await removeProvider(provider, tmp, `rep${rep + 1}-${mode}`);
      }
    };

    for (let rep = 0; rep < settings.reps; rep++) {
      const order: Mode[] = rep % 2 === 0 ? ['direct', 'overlay'] : ['overlay', 'direct'];
      for (const [position, mode] of order.entries()) sessions.push(await session(mode, rep, position));
    }
  } finally {
    await driver?.close().catch(() => undefined);
    await cluster.stop();
  }
  return { image: AGENT_IMAGE, tcpTool, sessions };
}
