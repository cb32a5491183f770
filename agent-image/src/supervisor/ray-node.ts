import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { accessSync, constants, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { RAY_SANDBOX_IGNORE_CGROUPS, SANDBOX_LABEL, SANDBOX_RESOURCE, SPILL_DIR } from '@ray-agent/protocol';
import type { RayPorts } from '../config/agent-config.js';
import { formatGcsAddress, type GcsAddress } from '../config/ray-head.js';
import type { RayResources } from '../limits/ray-resources.js';
import { rayAuthEnvironment } from '../ray/auth-environment.js';

export interface RayNodeOptions {
  rayBin: string;
  gcs: GcsAddress;
  resources: RayResources;
  ports: RayPorts;
  nodeIpAddress: string | undefined;
  providerId: string;
  drainDeadlineSeconds: number;
  gcsReconnectTimeoutSeconds: number;
  /** Set when the cluster runs with Ray's token authentication: the token's file (RAY_AUTH_TOKEN_FILE). */
  rayAuthTokenFile?: string | undefined;
  /** Where Ray spills objects; undefined: Ray's default, its session dir under /tmp. Default `spillDirectory()`. */
  spillDir?: string | undefined;
  /** The `gvisor` resource to advertise (the sandbox self-test passed); 0 or undefined: none. */
  sandboxSlots?: number | undefined;
}

/**
 * The spill volume's directory when it is mounted writable (the controller's container), else undefined: a
 * read-only root without the volume keeps Ray's default under /tmp rather than failing to start.
 */
export function spillDirectory(dir: string = SPILL_DIR): string | undefined {
  try {
    accessSync(dir, constants.W_OK);
    return dir;
  } catch {
    return undefined;
  }
}

/** Objects spilled by an earlier node died with it; a node killed (OOM, SIGKILL) never deleted its own. */
export function clearSpillDirectory(dir: string): void {
  for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
}

export type RayNodeEvents = {
  joined: [];
  exit: [{ code: number | null; signal: NodeJS.Signals | null; lastLines: string[]; requested: boolean }];
  line: [string];
};

/** Variables the node must never see: Ray tasks inherit the node's environment. */
const SECRET_VARIABLES = ['AGENT_TOKEN', 'AGENT_TOKEN_FILE'];

/** The provider label and resource let a driver aim work at this machine. */
export function providerLabel(providerId: string): string {
  return `ray-agent/provider-id=${providerId}`;
}
export function providerResource(providerId: string): string {
  return `provider:${providerId}`;
}

/** Ray's --labels takes `key=value` pairs joined by commas. */
function nodeLabels(options: RayNodeOptions): string {
  const labels = [providerLabel(options.providerId)];
  if (options.sandboxSlots) labels.push(`${SANDBOX_LABEL}=${SANDBOX_RESOURCE}`);
  return labels.join(',');
}

function nodeResources(options: RayNodeOptions): Record<string, number> {
  const resources: Record<string, number> = { [providerResource(options.providerId)]: 1 };
  if (options.sandboxSlots) resources[SANDBOX_RESOURCE] = options.sandboxSlots;
  return resources;
}

export function rayStartArgs(options: RayNodeOptions): string[] {
  const { resources, ports } = options;
  const args = [
    'start',
    `--address=${formatGcsAddress(options.gcs)}`,
    '--block',
    `--num-cpus=${resources.numCpus}`,
    '--num-gpus=0',
    `--memory=${resources.memoryBytes}`,
    `--object-store-memory=${resources.objectStoreBytes}`,
    `--node-manager-port=${ports.nodeManager}`,
    `--object-manager-port=${ports.objectManager}`,
    `--min-worker-port=${ports.minWorker}`,
    `--max-worker-port=${ports.maxWorker}`,
    `--metrics-export-port=${ports.metricsExport}`,
    `--dashboard-agent-grpc-port=${ports.dashboardAgentGrpc}`,
    `--dashboard-agent-listen-port=${ports.dashboardAgentListen}`,
    `--runtime-env-agent-port=${ports.runtimeEnvAgent}`,
    `--labels=${nodeLabels(options)}`,
    `--resources=${JSON.stringify(nodeResources(options))}`,
    '--disable-usage-stats',
  ];
  if (options.nodeIpAddress) args.push(`--node-ip-address=${options.nodeIpAddress}`);
  const spillDir = 'spillDir' in options ? options.spillDir : spillDirectory();
  if (spillDir) args.push(`--object-spilling-directory=${spillDir}`);
  return args;
}

export function rayEnvironment(options: RayNodeOptions, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const name of SECRET_VARIABLES) delete env[name];
  return {
    ...rayAuthEnvironment(env, options.rayAuthTokenFile),
    RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL: 'minor',
    RAY_USAGE_STATS_ENABLED: '0',
    // SIGTERM to `ray start --block` drains the node for this long before it stops (Ray >= 2.58).
    RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S: String(options.drainDeadlineSeconds),
    RAY_gcs_rpc_server_reconnect_timeout_s: String(options.gcsReconnectTimeoutSeconds),
    PYTHONUNBUFFERED: '1',
    [RAY_SANDBOX_IGNORE_CGROUPS]: '1',
  };
}

/** One run of `ray start --block`: a Ray worker node, supervised as a child process in its own process group. */
export class RayNode extends EventEmitter<RayNodeEvents> {
  private child: ChildProcess | undefined;
  private readonly lastLines: string[] = [];
  private stopRequested = false;
  private exited: Promise<void> = Promise.resolve();

  constructor(private readonly options: RayNodeOptions) {
    super();
  }

  start(): void {
    const spillDir = 'spillDir' in this.options ? this.options.spillDir : spillDirectory();
    if (spillDir) clearSpillDirectory(spillDir);
    const child = spawn(this.options.rayBin, rayStartArgs(this.options), {
      env: rayEnvironment(this.options),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.emit('exit', { code, signal, lastLines: [...this.lastLines], requested: this.stopRequested });
        resolve();
      });
      child.on('error', (error) => {
        this.remember(`could not start ray: ${error.message}`);
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.remember(line);
        this.emit('line', line);
        if (line.includes('Ray runtime started')) this.emit('joined');
      });
    }
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Drains and stops the node: SIGTERM makes Ray stop taking work and let running tasks finish for up to the
   * drain deadline. If it is still up after `graceSeconds`, the whole process group is killed.
   */
  async stop(graceSeconds: number): Promise<void> {
    this.stopRequested = true;
    if (!this.running || !this.child?.pid) return;
    this.signalGroup('SIGTERM');
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(true), graceSeconds * 1000).unref()),
    ]);
    if (timedOut) this.kill();
    await this.exited;
  }

  /** Immediate stop: the second signal, or the deadline passed. */
  kill(): void {
    this.stopRequested = true;
    this.signalGroup('SIGKILL');
  }

  private signalGroup(signal: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      // SIGTERM goes to `ray start` only (it drains, then stops its children); SIGKILL to the whole group.
      if (signal === 'SIGTERM') process.kill(pid, signal);
      else process.kill(-pid, signal);
    } catch {
      // already gone
    }
  }

  private remember(line: string): void {
    this.lastLines.push(line);
    if (this.lastLines.length > 40) this.lastLines.shift();
  }
}

/**
 * Ray's processes: the raylet and GCS binaries, retitled workers (`ray::`), Ray's Python helpers, and the gVisor
 * sandboxes Ray's sandbox actors started (runsc, its re-executed self, runsc-gofer, runsc-sandbox), which outlive a
 * killed actor.
 */
const RAY_PROCESS =
  /^ray::|(^|\/)(raylet|gcs_server|runsc(-gofer|-sandbox)?)\0|^\/proc\/self\/exe\0--rootless\0|site-packages\/ray\/|\/ray\0(start|stop)\0/;

/**
 * Where the agent's own processes hang: the agent itself, and its parent when that is tini, the subreaper that
 * adopts Ray's orphans. Only processes below these are ever killed: an agent run outside its container (a test on
 * a developer's machine, `docker run --pid=host`) must never touch another program's Ray.
 */
export function ownRoots(procRoot = '/proc', self = process.pid, parent = process.ppid): number[] {
  try {
    const parentCmdline = readFileSync(`${procRoot}/${parent}/cmdline`, 'latin1');
    if (/^(\S*\/)?tini\0/.test(parentCmdline)) return [self, parent];
  } catch {
    // no parent to adopt orphans: only our own children count
  }
  return [self];
}

/** The parent PID from /proc/PID/stat (after the last ')', since the command name may hold spaces and parens). */
function parentOf(procRoot: string, pid: number): number | undefined {
  try {
    const stat = readFileSync(`${procRoot}/${pid}/stat`, 'latin1');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Ray processes left below the agent's own processes (`ownRoots`), from /proc. Zombies have no cmdline and do not
 * count.
 */
export function rayProcessPids(
  procRoot = '/proc',
  roots: number[] = ownRoots(procRoot),
  pattern: RegExp = RAY_PROCESS,
): number[] {
  const pids: number[] = [];
  for (const name of readdirSync(procRoot)) {
    const pid = Number(name);
    if (!/^\d+$/.test(name) || roots.includes(pid)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`${procRoot}/${pid}/cmdline`, 'latin1');
    } catch {
      continue; // the process ended while we looked
    }
    if (pattern.test(cmdline) && descendsFrom(procRoot, pid, roots)) pids.push(pid);
  }
  return pids;
}

/** Whether this agent's raylet still runs: after a drain it exits by itself once the node is idle. */
export function rayletRunning(procRoot = '/proc', roots: number[] = ownRoots(procRoot)): boolean {
  return rayProcessPids(procRoot, roots, /(^|\/)raylet\0/).length > 0;
}

function descendsFrom(procRoot: string, pid: number, roots: number[]): boolean {
  let current: number | undefined = pid;
  for (let depth = 0; depth < 64 && current !== undefined && current > 0; depth += 1) {
    current = parentOf(procRoot, current);
    if (current !== undefined && roots.includes(current)) return true;
  }
  return false;
}

export interface LeftoverKill {
  /** How many Ray processes were found and sent SIGKILL. */
  killed: number;
  /** How many were still there when the time ran out. */
  left: number;
}

/**
 * Kills every Ray process left below the agent by PID (in its container that is every Ray process there) and waits
 * until they are gone, at most `withinMs`. `ray stop --force` does the same but first starts Python (1-2 s, up to 30 s on
 * a loaded machine), which a bounded stop cannot afford. tini, the subreaper, reaps them.
 */
export async function killRayLeftovers(
  withinMs: number,
  procRoot = '/proc',
  kill: (pid: number, signal: NodeJS.Signals) => void = process.kill,
  roots: number[] = ownRoots(procRoot),
): Promise<LeftoverKill> {
  const found = rayProcessPids(procRoot, roots);
  for (const pid of found) {
    try {
      kill(pid, 'SIGKILL');
    } catch {
      // already gone, or not ours
    }
  }
  const deadline = Date.now() + withinMs;
  let left = found.length ? rayProcessPids(procRoot, roots) : [];
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    left = rayProcessPids(procRoot, roots);
  }
  return { killed: found.length, left: left.length };
}
