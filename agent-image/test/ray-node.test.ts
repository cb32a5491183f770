import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { killRayLeftovers, ownRoots, rayProcessPids } from '../src/supervisor/ray-node.js';
import { tempDir } from './helpers.js';

/** Command lines as Ray 2.58 leaves them in a container's /proc (seen with `ray start --block`). */
const RAY = {
  start: '/opt/ray/bin/python3\0/opt/ray/bin/ray\0start\0--address=head:6379\0--block\0',
  raylet: '/opt/ray/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet\0--raylet_socket_name=/tmp/x\0',
  gcs: '/opt/ray/lib/python3.11/site-packages/ray/core/src/ray/gcs/gcs_server\0--log_dir=/tmp/x\0',
  logMonitor: '/opt/ray/bin/python3\0-u\0/opt/ray/lib/python3.11/site-packages/ray/_private/log_monitor.py\0',
  idleWorker: `ray::IDLE${'\0'.repeat(40)}`,
  agent: `ray::DashboardAgent${'\0'.repeat(40)}`,
  // A gVisor sandbox started by Ray's sandbox actor (seen in the agent image): runsc, its re-executed self, its
  // gofer and its kernel. They outlive a killed actor, and the sandbox's CPU with them.
  runsc: '/usr/bin/runsc\0--rootless\0--ignore-cgroups\0--root\0/tmp/runsc\0--network\0none\0run\0',
  runscSelf: '/proc/self/exe\0--rootless\0--ignore-cgroups\0--root\0/tmp/runsc\0--network\0none\0run\0',
  gofer: 'runsc-gofer\0--root=/tmp/runsc\0--network=none\0--rootless=true\0gofer\0',
  sandbox: 'runsc-sandbox\0--root=/tmp/runsc\0--network=none\0--rootless=true\0boot\0',
};
/** What stays in the agent's container once Ray is gone. */
const NOT_RAY = {
  init: '/sbin/docker-init\0--\0/usr/bin/tini\0--\0node\0/opt/ray-agent/agent.mjs\0',
  tini: '/usr/bin/tini\0--\0node\0/opt/ray-agent/agent.mjs\0',
  node: 'node\0/opt/ray-agent/agent.mjs\0',
  preflight: 'python3\0/opt/ray-agent/cluster_info.py\0head:6379\x05\0',
  sandboxCheck: 'python3\0/opt/ray-agent/sandbox_check.py\0/opt/ray-agent/sandbox/busybox-rootfs.tar\x0060\0',
  shell: 'sh\0-c\0cat /proc/1/status\0',
  zombie: '',
};

/** The agent (PID 50) under tini (PID 7), as in its container; everything else hangs below one of them. */
const AGENT = 50;
const TINI = 7;
const ROOTS = [AGENT, TINI];

interface Proc {
  cmdline: string;
  ppid: number;
}

/** A /proc stand-in: the host's real /proc holds other containers' Ray processes, which a test must never touch. */
function procTree(processes: Record<number, Proc>): string {
  const root = tempDir('agent-proc-');
  for (const [pid, { cmdline, ppid }] of Object.entries(processes)) {
    mkdirSync(join(root, pid));
    writeFileSync(join(root, pid, 'cmdline'), cmdline);
    // The command name may hold spaces and parentheses: the parser must read the PPID after the last ')'.
    writeFileSync(join(root, pid, 'stat'), `${pid} (odd (name) x) S ${ppid} ${pid} ${pid} 0 -1 4194560\n`);
  }
  mkdirSync(join(root, 'self'));
  return root;
}

/** Processes numbered from 100, each a child of `ppid` (the agent by default). */
const numbered = (cmdlines: string[], ppid = AGENT, from = 100) =>
  Object.fromEntries(cmdlines.map((cmdline, index) => [from + index, { cmdline, ppid }]));

describe('rayProcessPids', () => {
  it('finds nothing when only the agent, its init, a preflight, a shell and zombies are left', () => {
    expect(rayProcessPids(procTree(numbered(Object.values(NOT_RAY))), ROOTS)).toEqual([]);
  });

  it.each(Object.entries(RAY))('finds a Ray process (%s) below the agent by its PID', (_name, cmdline) => {
    expect(rayProcessPids(procTree(numbered([...Object.values(NOT_RAY), cmdline])), ROOTS)).toEqual([
      100 + Object.keys(NOT_RAY).length,
    ]);
  });

  it('finds Ray processes adopted by tini, and grandchildren of the agent', () => {
    const proc = procTree({
      200: { cmdline: RAY.start, ppid: AGENT },
      201: { cmdline: RAY.raylet, ppid: 200 },
      202: { cmdline: RAY.idleWorker, ppid: TINI },
    });
    expect(rayProcessPids(proc, ROOTS).sort()).toEqual([200, 201, 202]);
  });

  it("never finds another program's Ray: a raylet that does not hang below the agent or its tini", () => {
    const proc = procTree({
      1: { cmdline: '/sbin/init\0', ppid: 0 },
      300: { cmdline: '/usr/bin/containerd-shim-runc-v2\0', ppid: 1 },
      301: { cmdline: RAY.raylet, ppid: 300 },
      302: { cmdline: RAY.idleWorker, ppid: 1 },
      [AGENT]: { cmdline: NOT_RAY.node, ppid: 400 },
    });
    expect(rayProcessPids(proc, ROOTS)).toEqual([]);
  });
});

describe('ownRoots', () => {
  it('is the agent and its parent when the parent is tini (the subreaper that adopts orphans)', () => {
    const proc = procTree({
      [TINI]: { cmdline: NOT_RAY.tini, ppid: 1 },
      [AGENT]: { cmdline: NOT_RAY.node, ppid: TINI },
    });
    expect(ownRoots(proc, AGENT, TINI)).toEqual([AGENT, TINI]);
  });

  it('is the agent alone under any other parent (a test runner, a shell on the host)', () => {
    const proc = procTree({ 40: { cmdline: 'node\0vitest\0', ppid: 1 }, [AGENT]: { cmdline: NOT_RAY.node, ppid: 40 } });
    expect(ownRoots(proc, AGENT, 40)).toEqual([AGENT]);
  });
});

describe('killRayLeftovers', () => {
  it('kills a real leftover process by PID and returns once it is gone', async () => {
    // A real process whose command line reads as Ray's raylet.
    const dir = tempDir('agent-leftover-');
    const raylet = join(dir, 'raylet');
    copyFileSync('/bin/sleep', raylet);
    const child = spawn(raylet, ['60'], { stdio: 'ignore' });
    onTestFinished(() => {
      child.kill('SIGKILL');
    });
    const pid = child.pid ?? 0;
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    const proc = procTree({
      [pid]: { cmdline: `${raylet}\x0060\0`, ppid: AGENT },
      [AGENT]: { cmdline: NOT_RAY.node, ppid: TINI },
    });
    // The stand-in /proc forgets a process once the kernel has reaped it, as the real one does.
    const kill = (target: number, signal: NodeJS.Signals) => {
      process.kill(target, signal);
      void exited.then(() => rmSync(join(proc, String(target)), { recursive: true }));
    };
    const result = await killRayLeftovers(10_000, proc, kill, ROOTS);
    expect(result).toEqual({ killed: 1, left: 0 });
    expect(await exited).toBe('SIGKILL');
  });

  it('reports what is still left when the time runs out', async () => {
    const proc = procTree(numbered([NOT_RAY.node, RAY.raylet, RAY.idleWorker]));
    const signalled: number[] = [];
    const result = await killRayLeftovers(200, proc, (pid) => signalled.push(pid), ROOTS);
    expect(signalled).toEqual([101, 102]);
    expect(result).toEqual({ killed: 2, left: 2 });
  });

  it('does nothing when no Ray process is left (a clean drain)', async () => {
    const signalled: number[] = [];
    const result = await killRayLeftovers(
      200,
      procTree(numbered(Object.values(NOT_RAY))),
      (pid) => signalled.push(pid),
      ROOTS,
    );
    expect(result).toEqual({ killed: 0, left: 0 });
    expect(signalled).toEqual([]);
  });
});
