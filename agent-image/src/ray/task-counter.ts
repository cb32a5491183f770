import { readdirSync, readFileSync } from 'node:fs';

/**
 * Counts Ray tasks and actor calls executing on this node, from process titles: Ray retitles a worker
 * `ray::<function>` while it runs a task, `ray::<Actor>.<method>` while an actor runs a call, and `ray::IDLE`
 * when it waits. Local, instant and independent of the head's dashboard. Ray's own helper processes carry
 * titles too and are left out.
 *
 * An actor between calls shows its bare class name, which looks like a task title. A process seen running an
 * actor call (a dotted title) is remembered as an actor, so its bare title later counts as idle.
 */
const NOT_TASKS = new Set(['IDLE', 'DashboardAgent', 'RuntimeEnvAgent', 'JobSupervisor', 'ServeController']);
/** Ray's object-spilling IO workers: `ray::IDLE_SpillWorker`, `ray::SPILL_SpillWorker`, `ray::RESTORE_RestoreWorker`. */
const IO_WORKER = /^(IDLE|SPILL|RESTORE|DELETE)_(SpillWorker|RestoreWorker)$/;

export function workerTitle(cmdline: string): string | undefined {
  const argv0 = cmdline.split('\0')[0] ?? '';
  if (!argv0.startsWith('ray::')) return undefined;
  const name = argv0.slice('ray::'.length).trim().split(/\s/)[0] ?? '';
  return name === '' || NOT_TASKS.has(name) || IO_WORKER.test(name) ? undefined : name;
}

export interface TaskCount {
  running: number;
  names: Record<string, number>;
  /** gVisor sandboxes up: one runsc-sandbox process (gVisor's kernel) each, whatever runs inside. */
  sandboxes: number;
}

const SANDBOX_KERNEL = 'runsc-sandbox\0';

/** The status document's `tasks.byName`: at most this many names, the most frequent first. */
export const MAX_TASK_NAMES = 50;
const MAX_NAME_LENGTH = 200;

export function tasksByName(names: Record<string, number>): { name: string; count: number }[] {
  return Object.entries(names)
    .map(([name, count]) => ({ name: name.slice(0, MAX_NAME_LENGTH), count }))
    .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name))
    .slice(0, MAX_TASK_NAMES);
}

/**
 * `completed` counts a busy worker seen idle, running something else, or gone at the next sample: cumulative since
 * the agent started. It is a lower bound: a task that starts and ends between two samples is never seen, nor are
 * two same-named tasks run back to back by one worker within a sampling period.
 */
export class TaskCounter {
  private readonly actorPids = new Set<string>();
  /** What each busy worker ran at the last sample. */
  private busy = new Map<string, string>();
  completed = 0;

  constructor(private readonly procRoot = '/proc') {}

  /** The busy workers are about to be killed (a deadline passed): their end is not a completion. */
  forgetBusy(): void {
    this.busy.clear();
  }

  count(): TaskCount {
    const names: Record<string, number> = {};
    const alive = new Set<string>();
    const busy = new Map<string, string>();
    let running = 0;
    let sandboxes = 0;
    for (const pid of readdirSync(this.procRoot)) {
      if (!/^\d+$/.test(pid)) continue;
      let cmdline: string;
      try {
        cmdline = readFileSync(`${this.procRoot}/${pid}/cmdline`, 'utf8');
      } catch {
        continue; // the process ended while we looked
      }
      if (cmdline.startsWith(SANDBOX_KERNEL)) sandboxes += 1;
      const name = workerTitle(cmdline);
      if (name === undefined) continue;
      alive.add(pid);
      if (name.includes('.')) this.actorPids.add(pid);
      else if (this.actorPids.has(pid)) continue; // an actor waiting for its next call
      running += 1;
      names[name] = (names[name] ?? 0) + 1;
      busy.set(pid, name);
    }
    for (const pid of this.actorPids) if (!alive.has(pid)) this.actorPids.delete(pid);
    for (const [pid, name] of this.busy) if (busy.get(pid) !== name) this.completed += 1;
    this.busy = busy;
    return { running, names, sandboxes };
  }
}
