import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { SPILL_DIR } from '@ray-agent/protocol';
import type { BenchCluster, WorkerNode } from '../../lib/cluster.js';
import { processMemory } from '../../lib/procfs.js';
import { BENCH_DIR, docker, log, mustRun, run, sleep, waitFor } from '../../lib/util.js';
import type { CpuWindow, LimitsData, LimitsSettings, MemoryTrial, Scale, SpillTrial } from './schema.js';

const MiB = 1024 ** 2;
const HERE = join(BENCH_DIR, 'suites', 'limits');
const STATUS_URL = 'http://127.0.0.1:8765/status';

type Answer = Record<string, unknown> & { ok: boolean; error?: string };

/** bench/suites/limits/probe.py, long-lived on the head: one JSON command per line, one answer per line. */
class Probe {
  private readonly waiting: Array<(answer: Answer) => void> = [];
  private constructor(private readonly child: ChildProcess) {
    if (!child.stdout) throw new Error('probe has no stdout');
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('@@limits ')) this.waiting.shift()?.(JSON.parse(line.slice(9)) as Answer);
    });
  }

  static async start(head: string): Promise<Probe> {
    await docker('cp', join(HERE, 'probe.py'), `${head}:/tmp/limits-probe.py`);
    return new Probe(
      spawn('docker', ['exec', '-i', head, 'python3', '-u', '/tmp/limits-probe.py', '-'], { stdio: 'pipe' }),
    );
  }

  send(command: Record<string, unknown>): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.waiting.push((answer) =>
        answer.ok ? resolve(answer) : reject(new Error(`probe ${String(command.cmd)}: ${answer.error}`)),
      );
      this.child.stdin?.write(`${JSON.stringify(command)}\n`);
    });
  }

  close(): void {
    this.child.stdin?.end();
    setTimeout(() => this.child.kill('SIGKILL'), 5_000).unref();
  }
}

interface Limited {
  node: WorkerNode;
  nodeId: string;
  objectStoreBytes: number;
}

/** An agent container by the controller's recipe with these limits, restarted as the tray app's policy would. */
async function startLimited(
  cluster: BenchCluster,
  cpus: number,
  memoryBytes: number,
  seen: string[],
): Promise<Limited> {
  const node = await cluster.startAgent({ cpus, memoryBytes, cpuset: null, drainDeadlineSeconds: 5 });
  // The bench's recipe drops the restart policy; the person's container has it, and an OOM kill must meet it.
  await docker('update', '--restart=unless-stopped', node.name);
  const joined = await cluster.driver.send({ cmd: 'wait_node', exclude: seen, timeout: 180 });
  const nodeId = String(joined.nodeId);
  seen.push(nodeId);
  const resources = joined.resources as Record<string, number>;
  return { node, nodeId, objectStoreBytes: resources.object_store_memory ?? 0 };
}

async function removeLimited(cluster: BenchCluster, limited: Limited | undefined): Promise<void> {
  if (!limited) return;
  await docker('update', '--restart=no', limited.node.name).catch(() => undefined);
  await cluster.removeNode(limited.node);
  // The controller's recipe mounts the spill volume by name; docker run made it, so it is removed here.
  await run('docker', ['volume', 'rm', '-f', `${limited.node.name}-spill`]);
}

function cgroupFile(dir: string, file: string): string {
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch {
    return '';
  }
}

/** Kernel OOM kills so far in a memory cgroup (v1 memory.oom_control, v2 memory.events). */
function oomKills(memoryDir: string): number {
  const text = cgroupFile(memoryDir, 'memory.oom_control') + cgroupFile(memoryDir, 'memory.events');
  return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
}

function peakBytes(memoryDir: string): number {
  return Number(cgroupFile(memoryDir, 'memory.max_usage_in_bytes') || cgroupFile(memoryDir, 'memory.peak') || 0);
}

async function wakeup(seconds: number): Promise<{ p99: number; max: number }> {
  const out = await mustRun('python3', [join(HERE, 'wakeup.py'), String(seconds)], {
    timeoutMs: seconds * 1000 + 30_000,
  });
  const doc = JSON.parse(out) as { p99: number; max: number };
  return { p99: doc.p99, max: doc.max };
}

const RAMP_SECONDS = 15;

/** Waits (at most RAMP_SECONDS) until the container uses at least 90 % of its CPU limit over a second. */
async function saturated(node: WorkerNode, limit: number): Promise<void> {
  const deadline = Date.now() + RAMP_SECONDS * 1000;
  while (Date.now() < deadline) {
    const before = node.cgroup.figures()?.cpuSeconds ?? 0;
    await sleep(1_000);
    if ((node.cgroup.figures()?.cpuSeconds ?? 0) - before >= 0.9 * limit) return;
  }
}

async function cpuWindows(probe: Probe, limited: Limited, settings: LimitsSettings): Promise<CpuWindow[]> {
  const windows: CpuWindow[] = [];
  const { node, nodeId } = limited;
  for (const limit of settings.cpuLimits) {
    await docker('update', `--cpus=${limit}`, node.name);
    for (let rep = 0; rep < settings.cpuReps; rep++) {
      const idle = await wakeup(settings.cpuSeconds);
      // Eight quarter-CPU spinners: more runnable threads than any limit here, so the quota is what stops them.
      const spinning = probe.send({ cmd: 'spin', nodeId, tasks: 8, seconds: settings.cpuSeconds + RAMP_SECONDS + 3 });
      // The window opens once the workers run (starting eight Python workers takes seconds on a busy machine).
      await saturated(node, limit);
      const before = { cpu: node.cgroup.figures()?.cpuSeconds ?? Number.NaN, t: node.cgroup.throttling() };
      const startedAt = performance.now();
      const loaded = await wakeup(settings.cpuSeconds);
      const wall = (performance.now() - startedAt) / 1000;
      const after = { cpu: node.cgroup.figures()?.cpuSeconds ?? Number.NaN, t: node.cgroup.throttling() };
      await spinning;
      const window: CpuWindow = {
        limit,
        seconds: wall,
        cores: (after.cpu - before.cpu) / wall,
        periods: after.t.periods - before.t.periods,
        throttled: after.t.throttled - before.t.throttled,
        throttledSeconds: after.t.throttledSeconds - before.t.throttledSeconds,
        wakeP99: loaded.p99,
        wakeMax: loaded.max,
        idleWakeP99: idle.p99,
        idleWakeMax: idle.max,
      };
      log(
        `limits: --cpus=${limit}: ${window.cores.toFixed(3)} cores, throttled ${window.throttled}/${window.periods}, wake p99 ${window.wakeP99.toFixed(0)} µs (idle ${window.idleWakeP99.toFixed(0)})`,
      );
      windows.push(window);
    }
  }
  await docker('update', '--cpus=2', node.name);
  return windows;
}

async function scale(probe: Probe, limited: Limited, settings: LimitsSettings): Promise<Scale[]> {
  const out: Scale[] = [];
  for (let rep = 0; rep < settings.scaleReps; rep++) {
    const tiny = await probe.send({ cmd: 'tiny', nodeId: limited.nodeId, tasks: settings.tinyTasks, timeout: 3600 });
    const large = await probe
      .send({ cmd: 'large', nodeId: limited.nodeId, bytes: settings.largeMiB * MiB })
      .catch((error: Error) => ({ ok: false, bytes: 0, seconds: Number.NaN, error: error.message }));
    const churn = await probe.send({
      cmd: 'churn',
      nodeId: limited.nodeId,
      actors: settings.churnActors,
      tasks: settings.churnTasks,
    });
    const row: Scale = {
      tinyTasks: settings.tinyTasks,
      tinyCompleted: Number(tiny.completed),
      tinySeconds: Number(tiny.seconds),
      largeBytes: settings.largeMiB * MiB,
      largeOk: large.ok === true,
      largeSeconds: Number(large.seconds),
      actors: Number(churn.actors),
      actorSeconds: Number(churn.actorSeconds),
      onceTasks: Number(churn.tasks),
      onceSeconds: Number(churn.taskSeconds),
    };
    log(
      `limits: ${row.tinyCompleted} tiny tasks in ${row.tinySeconds.toFixed(1)} s; ${settings.largeMiB} MiB object ${row.largeOk ? 'ok' : 'FAILED'} in ${row.largeSeconds.toFixed(1)} s; ${row.actors} actors in ${row.actorSeconds.toFixed(1)} s`,
    );
    out.push(row);
  }
  return out;
}

async function dirBytes(container: string, dir: string): Promise<number> {
  const result = await run('docker', ['exec', container, 'du', '-sb', dir]);
  return Number(result.stdout.split(/\s/)[0] ?? Number.NaN);
}

async function spill(
  probe: Probe,
  limited: Limited,
  settings: LimitsSettings,
  limitBytes: number,
): Promise<SpillTrial> {
  const bytes = settings.spillObjectMiB * MiB;
  const put = await probe.send({ cmd: 'spill', nodeId: limited.nodeId, count: settings.spillObjects, bytes });
  // Ray spills asynchronously once the store passes its threshold: give it a moment to settle.
  await sleep(2_000);
  const spilledBytes = await dirBytes(limited.node.name, SPILL_DIR);
  const tmpBytes = await dirBytes(limited.node.name, '/tmp');
  // A failure to read them back is a result (the figure's check fails), not the end of the run.
  const check = await probe.send({ cmd: 'spill_check' }).catch((error: Error) => error);
  const failure =
    check instanceof Error
      ? `${check.message.split('\n')[0]?.slice(0, 300)} (${limited.node.cgroup.memoryMix()})`
      : null;
  const trial: SpillTrial = {
    limitBytes,
    objectStoreBytes: limited.objectStoreBytes,
    putBytes: bytes * settings.spillObjects,
    putSeconds: Number(put.putSeconds),
    spilledBytes,
    tmpBytes,
    intact: check instanceof Error ? 0 : Number(check.intact),
    objects: settings.spillObjects,
    failure,
  };
  log(
    `limits: spill: ${(trial.putBytes / MiB).toFixed(0)} MiB put into a ${(trial.objectStoreBytes / MiB).toFixed(0)} MiB store, ${(spilledBytes / MiB).toFixed(0)} MiB on the spill volume, ${trial.intact}/${trial.objects} intact`,
  );
  return trial;
}

/** A host process holding touched memory outside every container: it must keep it all through the trial. */
function hostHolder(bytes: number): ChildProcess {
  return spawn(process.execPath, ['-e', `globalThis.b = Buffer.alloc(${bytes}, 1); setInterval(() => {}, 1000);`], {
    stdio: 'ignore',
  });
}

async function agentState(): Promise<string> {
  try {
    const response = await fetch(STATUS_URL, { signal: AbortSignal.timeout(3_000) });
    return String(((await response.json()) as { state?: unknown }).state ?? 'unknown');
  } catch {
    return 'unreachable';
  }
}

async function memoryTrial(
  probe: Probe,
  limited: Limited,
  settings: LimitsSettings,
  limitBytes: number,
): Promise<MemoryTrial> {
  const holdBytes = 256 * MiB;
  const holder = hostHolder(holdBytes);
  try {
    await waitFor(
      'the host holder',
      () => ((processMemory(holder.pid ?? 0)?.rssAnon ?? 0) >= holdBytes ? true : undefined),
      30_000,
    );
    const dir = limited.node.cgroup.memoryDir;
    const killsBefore = oomKills(dir);
    const result = await probe.send({
      cmd: 'memory',
      nodeId: limited.nodeId,
      totalMiB: settings.memoryTaskMiB,
      stepMiB: 64,
      timeout: 300,
    });
    const kills = oomKills(dir) - killsBefore;
    const peak = peakBytes(dir);
    const oomKilled = (await docker('inspect', '-f', '{{.State.OOMKilled}}', limited.node.name)) === 'true';
    const restarts = Number(await docker('inspect', '-f', '{{.RestartCount}}', limited.node.name));
    const follow = await probe.send({ cmd: 'follow_up', nodeId: limited.nodeId, timeout: 180 });
    const trial: MemoryTrial = {
      limitBytes,
      taskMiB: settings.memoryTaskMiB,
      outcome: String(result.outcome),
      error: String(result.error ?? ''),
      oomKilled,
      restarts,
      kernelOomKills: kills,
      peakBytes: peak,
      hostKeptBytes: processMemory(holder.pid ?? 0)?.rssAnon ?? 0,
      hostHeldBytes: holdBytes,
      followUpRan: follow.ran === true,
      followUpSameNode: follow.sameNode === true,
      followUpSeconds: Number(follow.seconds),
      agentState: await agentState(),
    };
    log(
      `limits: memory: ${trial.taskMiB} MiB task under ${(limitBytes / MiB).toFixed(0)} MiB: ${trial.outcome} (${trial.error.slice(0, 120)}); kernel OOM kills ${kills}, OOMKilled ${trial.oomKilled}, restarts ${trial.restarts}; follow-up ${trial.followUpRan ? 'ran' : 'did NOT run'}; agent ${trial.agentState}`,
    );
    return trial;
  } finally {
    holder.kill('SIGKILL');
  }
}

export async function runLimits(cluster: BenchCluster, settings: LimitsSettings): Promise<LimitsData> {
  const probe = await Probe.start(cluster.head);
  const seen: string[] = [];
  const data: LimitsData = {
    memory: [],
    spill: [],
    cpu: [],
    scale: [],
    wakeTool: 'timer loop (bench/suites/limits/wakeup.py)',
  };
  let roomy: Limited | undefined;
  let tight: Limited | undefined;
  try {
    roomy = await startLimited(cluster, 2, 4096 * MiB, seen);
    data.cpu = await cpuWindows(probe, roomy, settings);
    data.scale = await scale(probe, roomy, settings);
    await removeLimited(cluster, roomy);
    roomy = undefined;

    const limitBytes = settings.memoryLimitMiB * MiB;
    tight = await startLimited(cluster, 2, limitBytes, seen);
    data.spill.push(await spill(probe, tight, settings, limitBytes));
    for (let rep = 0; rep < settings.memoryReps; rep++) {
      data.memory.push(await memoryTrial(probe, tight, settings, limitBytes));
      // A node replaced after a kill joins under a new ID; the next trial aims at the node alive now.
      const now = await cluster.driver.send({ cmd: 'wait_node', exclude: [], timeout: 180 });
      tight.nodeId = String(now.nodeId);
    }
  } finally {
    probe.close();
    await removeLimited(cluster, roomy);
    await removeLimited(cluster, tight);
  }
  return data;
}
