import { createServer } from 'node:net';
import { HEAD_START_ARGS } from '../../controller/src/playground/playground.js';
import { AGENT_IMAGE, type TestCluster } from './cluster.js';
import { docker, run } from './run.js';

/** Helpers the fault and soak tests share: Ray drivers on the head, raylet kills, state volume reads. */

export interface TaskResult {
  i: number;
  /** The Ray node the task ran on, or null when it failed. */
  node: string | null;
  /** The Ray exception's class name when the task failed. */
  error: string | null;
  /** Unix time (seconds) the driver saw the task end. */
  t: number;
}

export interface TasksOutcome {
  head: string;
  results: TaskResult[];
}

/**
 * A driver that runs `count` tasks of `seconds` each and reports every task's node (or error) and end time, in the
 * order they ended. `resource` aims the tasks at one agent (its `provider:<id>` resource).
 */
export function tasksScript(options: { count: number; seconds: number; resource?: string; maxRetries?: number }) {
  const resources = options.resource ? `, resources={"${options.resource}": 0.01}` : '';
  return `
import json, time, ray
ray.init(address="auto", logging_level="ERROR")
@ray.remote(num_cpus=0.5, max_retries=${options.maxRetries ?? 3}${resources})
def work(i):
    time.sleep(${options.seconds})
    return ray.get_runtime_context().get_node_id()
head = ray.get_runtime_context().get_node_id()
refs = {work.remote(i): i for i in range(${options.count})}
pending, results = list(refs), []
while pending:
    done, pending = ray.wait(pending, num_returns=1)
    for ref in done:
        try:
            results.append({"i": refs[ref], "node": ray.get(ref), "error": None, "t": time.time()})
        except Exception as error:
            results.append({"i": refs[ref], "node": None, "error": type(error).__name__, "t": time.time()})
print(json.dumps({"head": head, "results": results}))
`;
}

export async function runTasks(
  cluster: TestCluster,
  options: Parameters<typeof tasksScript>[0],
  timeoutMs = 180_000,
): Promise<TasksOutcome> {
  const result = await cluster.driver(tasksScript(options), timeoutMs);
  if (result.code !== 0) throw new Error(`driver exited ${result.code}: ${result.stderr.slice(-2000)}`);
  return JSON.parse(lastLine(result.stdout)) as TasksOutcome;
}

export interface RayNodeInfo {
  id: string;
  alive: boolean;
  head: boolean;
  ip: string;
  labels: Record<string, string>;
}

/**
 * The nodes the head's GCS knows, read with Ray's GCS client on the given head container. Not through
 * `ray.init`: a driver refuses to connect when the head's metadata names another Ray version (case 22).
 */
export async function rayNodes(head: string): Promise<RayNodeInfo[]> {
  const script = `
import json
from ray._raylet import GcsClient
nodes = GcsClient(address="127.0.0.1:6379").get_all_node_info(timeout=30).values()
print(json.dumps([{"id": n.node_id.hex(), "alive": n.state == 0, "head": n.is_head_node, "ip": n.node_manager_address, "labels": dict(n.labels)} for n in nodes]))
`;
  const result = await run('docker', ['exec', '-i', head, 'python3', '-'], { input: script, timeoutMs: 60_000 });
  if (result.code !== 0)
    throw new Error(`the node list of ${head} exited ${result.code}: ${result.stderr.slice(-2000)}`);
  return JSON.parse(lastLine(result.stdout)) as RayNodeInfo[];
}

export const PROVIDER_LABEL = 'ray-agent/provider-id';

/**
 * SIGKILLs the raylet inside an agent container, as the container's own user (the image has no pkill: the PID is
 * found by its process name in /proc). Returns the PIDs killed.
 */
export async function killRaylet(container: string): Promise<string> {
  return docker(
    'exec',
    container,
    'sh',
    '-c',
    'pids=$(grep -lx raylet /proc/[0-9]*/comm 2>/dev/null | cut -d/ -f3); [ -n "$pids" ] && kill -9 $pids && echo $pids',
  );
}

/** Reads a file of a state volume through a throwaway container with no network. */
export function readVolumeFile(volume: string, file: string): Promise<string> {
  return docker(
    'run',
    '--rm',
    '--network',
    'none',
    '--user',
    '0',
    '-v',
    `${volume}:/v:ro`,
    '--entrypoint',
    'cat',
    AGENT_IMAGE,
    `/v/${file}`,
  );
}

export async function savedProviderId(volume: string): Promise<string> {
  return (JSON.parse(await readVolumeFile(volume, 'credentials.json')) as { providerId: string }).providerId;
}

/**
 * Copies a state volume into a new one, as a person copying their agent's volume would. Mounting the new volume at
 * the image's state directory first gives it the image's owner and mode (uid 1000, 0700).
 */
export function copyVolume(from: string, to: string): Promise<string> {
  return docker(
    'run',
    '--rm',
    '--network',
    'none',
    '--user',
    '0',
    '-v',
    `${from}:/from:ro`,
    '-v',
    `${to}:/var/lib/ray-agent`,
    '--entrypoint',
    'cp',
    AGENT_IMAGE,
    '-a',
    '/from/.',
    '/var/lib/ray-agent/',
  );
}

/** A Ray head like TestCluster's, under another name (a second cluster on the same network). */
export function startHead(name: string, network: string): Promise<string> {
  return docker(
    'run',
    '-d',
    '--name',
    name,
    '--network',
    network,
    '--shm-size=512m',
    '--no-healthcheck',
    '--entrypoint',
    'ray',
    AGENT_IMAGE,
    ...HEAD_START_ARGS,
  );
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Seconds since `start` (a Date.now() value), to one decimal. */
export function secondsSince(start: number): number {
  return Math.round((Date.now() - start) / 100) / 10;
}

/**
 * The last line of a driver's output that is a JSON document. Ray streams its own lines to a driver's stdout too
 * (e.g. "(raylet) …" about a node that died), and they may come after the result.
 */
export function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines.findLast((line) => /^[[{]/.test(line.trim())) ?? lines.at(-1) ?? '';
}
