import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { TaskCounter, workerTitle } from '../src/ray/task-counter.js';
import { tempDir, waitFor } from './helpers.js';

describe('workerTitle', () => {
  it.each<[string, string | undefined]>([
    ['ray::IDLE', undefined],
    ['ray::work', 'work'],
    ['ray::work\0', 'work'],
    ['ray::work\u0000--some-arg\u0000', 'work'],
    ['ray::work            ', 'work'],
    ['ray::Counter.inc', 'Counter.inc'],
    ['ray::Counter', 'Counter'],
    ['ray::DashboardAgent', undefined],
    ['ray::RuntimeEnvAgent', undefined],
    ['ray::JobSupervisor', undefined],
    ['ray::ServeController', undefined],
    ['ray::IDLE_SpillWorker', undefined],
    ['ray::IDLE_RestoreWorker', undefined],
    ['ray::SPILL_SpillWorker', undefined],
    ['ray::RESTORE_RestoreWorker', undefined],
    ['ray::DELETE_SpillWorker', undefined],
    ['ray::', undefined],
    ['python3 foo', undefined],
    ['python3\0-m\0ray::work', undefined],
    ['/usr/bin/raylet\0--node_ip_address=10.0.0.1', undefined],
    ['', undefined],
  ])('%j -> %j', (cmdline, expected) => {
    expect(workerTitle(cmdline)).toBe(expected);
  });
});

describe('TaskCounter against a proc tree written to disk', () => {
  function procTree() {
    const root = tempDir('agent-proc-');
    mkdirSync(join(root, 'self'));
    return {
      root,
      set(pid: number, cmdline: string) {
        mkdirSync(join(root, String(pid)), { recursive: true });
        writeFileSync(join(root, String(pid), 'cmdline'), cmdline);
      },
      remove(pid: number) {
        rmSync(join(root, String(pid)), { recursive: true });
      },
    };
  }

  it('counts busy workers by name and skips idle workers, helpers and non-numeric entries', () => {
    const proc = procTree();
    proc.set(10, 'ray::work\0');
    proc.set(11, 'ray::work\0');
    proc.set(12, 'ray::IDLE\0');
    proc.set(13, 'ray::Counter.inc\0');
    proc.set(14, 'ray::DashboardAgent\0');
    proc.set(15, '/usr/bin/python3\0worker.py\0');
    mkdirSync(join(proc.root, '16')); // a process that ended: no cmdline to read
    // One gVisor sandbox: its kernel (runsc-sandbox) counts it, its gofer and runsc itself do not.
    proc.set(17, 'runsc-sandbox\0--root=/tmp/runsc\0boot\0');
    proc.set(18, 'runsc-gofer\0--root=/tmp/runsc\0gofer\0');
    proc.set(19, '/usr/bin/runsc\0--rootless\0run\0');
    expect(new TaskCounter(proc.root).count()).toEqual({
      running: 3,
      names: { work: 2, 'Counter.inc': 1 },
      sandboxes: 1,
    });
  });

  it('counts an actor between calls as idle once it has been seen running a call', () => {
    const proc = procTree();
    const counter = new TaskCounter(proc.root);
    proc.set(20, 'ray::Counter.inc\0');
    proc.set(21, 'ray::work\0');
    expect(counter.count().running).toBe(2);
    proc.set(20, 'ray::Counter\0'); // the call finished; the actor waits for the next one
    expect(counter.count()).toEqual({ running: 1, names: { work: 1 }, sandboxes: 0 });
    proc.set(20, 'ray::Counter.add\0');
    expect(counter.count()).toEqual({ running: 2, names: { 'Counter.add': 1, work: 1 }, sandboxes: 0 });
  });

  it('forgets an actor whose process ended, so a new process with the same pid counts as a task', () => {
    const proc = procTree();
    const counter = new TaskCounter(proc.root);
    proc.set(30, 'ray::Counter.inc\0');
    expect(counter.count().running).toBe(1);
    proc.remove(30);
    expect(counter.count().running).toBe(0);
    proc.set(30, 'ray::train\0');
    expect(counter.count()).toEqual({ running: 1, names: { train: 1 }, sandboxes: 0 });
  });
});

describe('TaskCounter against the real /proc', () => {
  function titled(title: string): ChildProcess {
    const child = spawn('bash', ['-c', `exec -a "${title}" sleep 30`], { stdio: 'ignore' });
    onTestFinished(() => {
      child.kill('SIGKILL');
    });
    return child;
  }
  const argv0 = (pid: number | undefined) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
    } catch {
      return undefined;
    }
  };

  it('counts exactly the processes titled ray::<task>, not the one titled ray::IDLE', async () => {
    // A task name of this test's own: the host's /proc also shows Ray workers of other people's containers.
    const task = `probe_${process.pid}_${Date.now()}`;
    const baseline = new TaskCounter().count();
    const workers = [titled(`ray::${task}`), titled(`ray::${task}`), titled(`ray::${task}`)];
    const idle = titled('ray::IDLE');
    const all = [...workers, idle];
    // Wait until every bash has exec'd into its titled sleep, so the count sees the final titles.
    const ready = await waitFor(() => all.every((child) => argv0(child.pid)?.startsWith('ray::') === true));
    expect(ready).toBe(true);
    expect(argv0(idle.pid)).toBe('ray::IDLE');
    for (const child of workers) expect(argv0(child.pid)).toBe(`ray::${task}`);

    const after = new TaskCounter().count();
    expect(baseline.names[task]).toBeUndefined();
    expect(after.names[task]).toBe(3);
    expect(after.names.IDLE).toBeUndefined();

    const exited = all.map((child) => new Promise((resolve) => child.once('exit', resolve)));
    for (const child of all) child.kill('SIGKILL');
    await Promise.all(exited);
    expect(new TaskCounter().count().names[task]).toBeUndefined();
  });
});
