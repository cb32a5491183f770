import { SANDBOX_RESOURCE, StatusDocument } from '@ray-agent/protocol';
import { request } from 'undici';
import type { BenchCluster } from '../../lib/cluster.js';
import { log, waitFor } from '../../lib/util.js';
import { STATUS_PORT } from '../nodes/containers.js';
import type { SandboxData, SandboxRep, SandboxSettings, Timed } from './schema.js';

const GiB = 1024 ** 3;

/** busybox `time -f "%e %U %S"` prints its three figures as the last line of the command's stderr. */
export function parseTimed(stderr: string): Timed {
  const last = stderr.trim().split('\n').at(-1) ?? '';
  const match = /^(\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)$/.exec(last.trim());
  if (!match) throw new Error(`busybox time gave no figures: ${JSON.stringify(last.slice(0, 200))}`);
  return { wall: Number(match[1]), user: Number(match[2]), sys: Number(match[3]) };
}

async function agentStatus(): Promise<StatusDocument> {
  const response = await request(`http://127.0.0.1:${STATUS_PORT}/status`);
  return StatusDocument.parse(await response.body.json());
}

/**
 * One agent node (the controller's recipe, 1 CPU); per repetition, alternating which goes first: a sandbox's start
 * against an ordinary actor's, and the same busybox commands inside the sandbox and as an ordinary task on the
 * same node (the task runs the sandbox image's own busybox binary), each timed by busybox where it ran.
 */
export async function runSandbox(cluster: BenchCluster, settings: SandboxSettings): Promise<SandboxData> {
  const driver = cluster.driver;
  await cluster.startAgent({ cpus: 1, memoryBytes: 2 * GiB, cpuset: null, drainDeadlineSeconds: 5 });
  const joined = await driver.send({ cmd: 'wait_node', timeout: 240 });
  const nodeId = String(joined.nodeId);
  const resources = joined.resources as Record<string, number>;
  const status = await waitFor(
    'the agent to report its sandbox self-test',
    async () => {
      const s = await agentStatus().catch(() => undefined);
      return s?.sandbox && s.sandbox.state !== 'checking' ? s : undefined;
    },
    120_000,
  );
  const sandbox = status.sandbox;
  if (sandbox?.state !== 'ready' || !resources[SANDBOX_RESOURCE])
    throw new Error(`the agent's node runs no sandboxes: ${sandbox?.reason ?? `no ${SANDBOX_RESOURCE} resource`}`);
  const provider = Object.keys(resources).find((name) => name.startsWith('provider:'));
  if (!provider) throw new Error('the agent node has no provider resource');
  log(`sandbox: node ${nodeId.slice(0, 8)}, self-test ${sandbox.startSeconds} s, kernel ${sandbox.kernel}`);

  const commands = {
    loop: ['awk', `BEGIN{x=0;for(i=0;i<${settings.loops};i++)x=(x+i*i)%1000003;print x}`],
    syscalls: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=512', `count=${settings.blocks}`],
  };
  const reps: SandboxRep[] = [];
  for (let rep = 0; rep < settings.reps; rep++) {
    const first = rep % 2 === 0 ? 'sandbox' : 'task';
    const arms = first === 'sandbox' ? (['sandbox', 'task'] as const) : (['task', 'sandbox'] as const);
    const start: Partial<SandboxRep['start']> = {};
    for (const arm of arms) {
      if (arm === 'sandbox') {
        start.sandbox = Number(
          (await driver.send({ cmd: 'sandbox_start', provider, resource: SANDBOX_RESOURCE })).seconds,
        );
      } else start.actor = Number((await driver.send({ cmd: 'actor_start', nodeId })).seconds);
    }
    const timed = async (arm: 'sandbox' | 'task', argv: string[]) =>
      driver.send({ cmd: arm === 'sandbox' ? 'sandbox_run' : 'task_run', nodeId, argv });
    const measure = async (argv: string[]) => {
      const out: Partial<Record<'sandbox' | 'task', { timed: Timed; seconds: number }>> = {};
      for (const arm of arms) {
        const answer = await timed(arm, ['time', '-f', '%e %U %S', ...argv]);
        out[arm] = { timed: parseTimed(String(answer.stderr)), seconds: Number(answer.seconds) };
      }
      return out as Record<'sandbox' | 'task', { timed: Timed; seconds: number }>;
    };
    const loop = await measure(commands.loop);
    const syscalls = await measure(commands.syscalls);
    const trip = await measure(['true']);
    await driver.send({ cmd: 'sandbox_stop' });
    reps.push({
      first,
      start: { sandbox: start.sandbox ?? 0, actor: start.actor ?? 0 },
      loop: { sandbox: loop.sandbox.timed, task: loop.task.timed },
      syscalls: { sandbox: syscalls.sandbox.timed, task: syscalls.task.timed },
      roundTrip: { sandbox: trip.sandbox.seconds, task: trip.task.seconds },
    });
    log(
      `sandbox rep ${rep + 1}: start ${start.sandbox?.toFixed(2)} s (actor ${start.actor?.toFixed(2)} s), loop ${loop.sandbox.timed.wall} s in the sandbox / ${loop.task.timed.wall} s as a task, dd ${syscalls.sandbox.timed.wall} / ${syscalls.task.timed.wall} s`,
    );
  }
  return {
    loops: settings.loops,
    blocks: settings.blocks,
    cpus: 1,
    selfTest: { kernel: sandbox.kernel ?? '', startSeconds: sandbox.startSeconds ?? 0 },
    reps,
  };
}
