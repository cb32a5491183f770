import { performance } from 'node:perf_hooks';
import type { BenchCluster, WorkerNode } from '../../lib/cluster.js';
import { processTitle } from '../../lib/procfs.js';
import { log, sleep, waitFor } from '../../lib/util.js';
import type { ArmShape } from './containers.js';
import { probeFlags } from './containers.js';
import {
  agentLog,
  bareNode,
  footprintWindow,
  measureStop,
  poller,
  random,
  rayStartLine,
  settle,
  statusLoad,
} from './measure.js';
import type { Arm, Batch, Kind, NodesData, Pair } from './schema.js';
import type { NodesSettings } from './settings.js';

const GiB = 1024 ** 3;

function batch(answer: Record<string, unknown>): Batch {
  const cpu = (answer.taskCpu as number[] | undefined) ?? [];
  const out: Batch = {
    tasks: answer.tasks as number,
    elapsed: answer.elapsed as number,
    perSecond: answer.perSecond as number,
  };
  if (cpu.length) out.cpuPerTask = cpu.reduce((a, b) => a + b, 0) / cpu.length;
  return out;
}

interface Live {
  node: WorkerNode;
  nodeId: string;
  arm: Arm;
}

/**
 * The nodes suite: in each pair the agent container and the plain Ray container (same image, same recipe) are
 * alive together, started in a seeded random order; their idle windows are the same windows of time, their compute
 * runs in short alternating rounds (random order per round), so load from outside falls on both arms alike.
 */
export async function runNodes(cluster: BenchCluster, settings: NodesSettings, imageId: string): Promise<NodesData> {
  const seed = settings.seed ?? Date.now() % 2 ** 31;
  const rng = random(seed);
  const cpuCount = (await import('node:os')).cpus().length;
  const shape: ArmShape = {
    cpus: settings.cpus,
    memoryBytes: settings.memoryGiB * GiB,
    // The same CPUs for both arms; on a machine with fewer CPUs than the limit, the kernel places them.
    cpuset: cpuCount >= settings.cpus ? `0-${settings.cpus - 1}` : null,
    drainDeadlineSeconds: settings.drainDeadlineSeconds,
  };
  const driver = cluster.driver;
  const seen = new Set<string>();
  const bare = { rssBytes: [] as number[], rssAnonBytes: [] as number[] };
  for (let i = 0; i < 3; i++) {
    const one = await bareNode(imageId, probeFlags(imageId, shape));
    bare.rssBytes.push(one.rssBytes);
    bare.rssAnonBytes.push(one.rssAnonBytes);
  }
  log(`nodes: seed ${seed}; bare node anon ${(bare.rssAnonBytes[0] ?? 0) / 2 ** 20} MiB`);

  const start = async (kind: Kind, position: number, drain: number): Promise<Live> => {
    const providersBefore = kind === 'agent' ? new Set(await cluster.providerIds()) : undefined;
    const options = { ...shape, drainDeadlineSeconds: drain };
    const node = kind === 'agent' ? await cluster.startAgent(options) : await cluster.startPlain(options);
    // Alive: the driver sees a new node with CPUs. Registered: the manager lists a new provider.
    const [alive, registeredAt] = await Promise.all([
      driver.send({ cmd: 'wait_node', exclude: [...seen], timeout: 240 }),
      providersBefore
        ? waitFor(
            'the agent to register',
            async () => ((await cluster.providerIds()).some((id) => !providersBefore.has(id)) ? Date.now() : undefined),
            240_000,
            20,
          )
        : Promise.resolve(null),
    ]);
    const nodeId = alive.nodeId as string;
    seen.add(nodeId);
    const aliveSeconds = ((alive.seenAt as number) * 1000 - node.startedAt) / 1000;
    const registeredSeconds = registeredAt === null ? null : (registeredAt - node.startedAt) / 1000;
    if (kind === 'agent') node.agentPid = await cluster.agentPid(node);
    const arm: Arm = {
      kind,
      position,
      name: node.name,
      alive: true,
      join: { aliveSeconds, registeredSeconds, contributingSeconds: Math.max(aliveSeconds, registeredSeconds ?? 0) },
      stop: { mainExitSeconds: 0, allGoneSeconds: 0 },
    };
    const line = rayStartLine(node);
    if (line) arm.rayStart = line;
    log(`  ${kind} contributing after ${arm.join.contributingSeconds.toFixed(2)} s`);
    return { node, nodeId, arm };
  };

  const finish = async (live: Live) => {
    await driver.send({ cmd: 'wait_gone', nodeId: live.nodeId, timeout: 60 }).catch(() => {
      live.arm.alive = false;
    });
    if (live.arm.kind === 'agent') live.arm.agentLog = await agentLog(live.node);
  };

  const pairs: Pair[] = [];
  const pair = async (rep: number, mode: 'main' | 'busy') => {
    const order: Kind[] = rng() < 0.5 ? ['agent', 'plain'] : ['plain', 'agent'];
    const drain = mode === 'busy' ? settings.busyStop.drainDeadlineSeconds : settings.drainDeadlineSeconds;
    log(`nodes ${mode} pair ${rep + 1}: ${order.join(' then ')}`);
    const lives: Partial<Record<Kind, Live>> = {};
    try {
      for (const [position, kind] of order.entries()) lives[kind] = await start(kind, position, drain);
      const agent = lives.agent as Live;
      const plain = lives.plain as Live;
      const result: Pair = { rep, mode, roundOrder: [], agent: agent.arm, plain: plain.arm };
      if (mode === 'main') {
        const settled = await settle([agent.node, plain.node], settings.settleMaxSeconds);
        agent.arm.settle = settled[0];
        plain.arm.settle = settled[1];
        // The same windows of time for both arms; the agent's polled window comes first or second at random.
        const windows = rng() < 0.5 ? (['idle', 'polled'] as const) : (['polled', 'idle'] as const);
        result.firstWindow = windows[0];
        for (const window of windows) {
          const during = window === 'polled' ? poller(settings.pollEverySeconds) : undefined;
          const [a, p] = await footprintWindow([agent.node, plain.node], settings.idleSeconds, during);
          if (window === 'idle') {
            agent.arm.idle = a;
            plain.arm.idle = p;
          } else agent.arm.polled = a;
        }
        agent.arm.status = await statusLoad(settings.statusRequests, settings.statusConnections);
        log(`  status: ${agent.arm.status.requests} requests, server ${JSON.stringify(agent.arm.status.server)}`);
        await compute(result, [agent, plain]);
        for (const kind of order) {
          const live = lives[kind] as Live;
          Object.assign(live.arm.stop, await measureStop(live.node));
        }
      } else {
        for (const kind of order) await busyStop(lives[kind] as Live);
      }
      for (const kind of order) await finish(lives[kind] as Live);
      pairs.push(result);
    } finally {
      for (const live of Object.values(lives)) if (live) await cluster.removeNode(live.node);
    }
  };

  const compute = async (result: Pair, lives: Live[]) => {
    for (const live of lives) {
      // Warm-up: workers start, the functions are exported.
      await driver.send({
        cmd: 'cpu',
        nodeId: live.nodeId,
        tasks: settings.cpus,
        loops: Math.round(settings.cpu.loops / 10),
      });
      await driver.send({ cmd: 'tiny', nodeId: live.nodeId, tasks: 50 });
      live.arm.compute = { cpu: [], tiny: [], failures: [], throttling: live.node.cgroup.throttling() };
    }
    const throttled0 = lives.map((live) => live.node.cgroup.throttling());
    for (let round = 0; round < settings.rounds; round++) {
      const order = rng() < 0.5 ? lives : [...lives].reverse();
      result.roundOrder.push(order[0]?.arm.kind as Kind);
      for (const [cmd, extra] of [
        ['cpu', { tasks: settings.cpu.tasks, loops: settings.cpu.loops }],
        ['tiny', { tasks: settings.tiny.tasks }],
      ] as const)
        for (const live of order) {
          const target = live.arm.compute as NonNullable<Arm['compute']>;
          try {
            target[cmd].push(batch(await driver.send({ cmd, nodeId: live.nodeId, ...extra })));
          } catch (error) {
            target.failures.push(`${cmd} round ${round + 1}: ${(error as Error).message.slice(0, 200)}`);
          }
        }
    }
    lives.forEach((live, i) => {
      const t0 = throttled0[i] as ReturnType<WorkerNode['cgroup']['throttling']>;
      const t1 = live.node.cgroup.throttling();
      const target = live.arm.compute as NonNullable<Arm['compute']>;
      target.throttling = {
        periods: t1.periods - t0.periods,
        throttled: t1.throttled - t0.throttled,
        throttledSeconds: t1.throttledSeconds - t0.throttledSeconds,
      };
      log(
        `  ${live.arm.kind}: cpu ${target.cpu.map((b) => b.perSecond.toFixed(3)).join(', ')}; tiny ${target.tiny.map((b) => b.perSecond.toFixed(0)).join(', ')} tasks/s`,
      );
    });
  };

  const busyStop = async (live: Live) => {
    const tasks = settings.cpus;
    const taskSeconds = settings.busyStop.taskSeconds;
    await driver.send({ cmd: 'submit_busy', nodeId: live.nodeId, tasks, seconds: taskSeconds });
    // The tasks run once their workers are titled ray::busy_task; signal 1 s later.
    const runningAt = await waitFor(
      'the busy tasks to start',
      () =>
        live.node.cgroup.pids().filter((pid) => processTitle(pid).startsWith('ray::busy_task')).length >= tasks
          ? performance.now()
          : undefined,
      120_000,
      20,
    );
    await sleep(1000);
    const remainingSeconds = taskSeconds - (performance.now() - runningAt) / 1000;
    Object.assign(live.arm.stop, await measureStop(live.node));
    const collected = await driver.send({ cmd: 'collect_busy', timeout: 30 });
    live.arm.stop.busy = {
      tasks,
      taskSeconds,
      remainingSeconds,
      completed: collected.completed as number,
      failed: collected.failed as number,
      errors: collected.errors as string[],
    };
    log(`  ${live.arm.kind} stopped with tasks in ${live.arm.stop.allGoneSeconds.toFixed(2)} s`);
  };

  for (let rep = 0; rep < settings.reps; rep++) await pair(rep, 'main');
  for (let rep = 0; rep < settings.busyStop.reps; rep++) await pair(rep, 'busy');
  return {
    imageId,
    seed,
    shape: { cpus: shape.cpus, memoryBytes: shape.memoryBytes, cpuset: shape.cpuset },
    bareNode: bare,
    pairs,
  };
}
