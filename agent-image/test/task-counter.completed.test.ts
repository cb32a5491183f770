import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_TASK_NAMES, TaskCounter, tasksByName } from '../src/ray/task-counter.js';
import { tempDir } from './helpers.js';

function procTree() {
  const root = tempDir('agent-proc-completed-');
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

describe('TaskCounter.completed', () => {
  it('counts a busy worker seen idle, running another task, or gone; not one still busy', () => {
    const proc = procTree();
    const counter = new TaskCounter(proc.root);
    proc.set(10, 'ray::work\0');
    proc.set(11, 'ray::work\0');
    proc.set(12, 'ray::other\0');
    counter.count();
    expect(counter.completed).toBe(0);
    counter.count(); // all still busy with the same task
    expect(counter.completed).toBe(0);
    proc.set(10, 'ray::IDLE\0'); // finished, back in the pool
    proc.set(11, 'ray::train\0'); // finished, started another
    proc.remove(12); // finished and exited
    counter.count();
    expect(counter.completed).toBe(3);
    proc.set(11, 'ray::IDLE\0');
    counter.count();
    expect(counter.completed).toBe(4);
  });

  it('counts a finished actor call once the actor waits between calls', () => {
    const proc = procTree();
    const counter = new TaskCounter(proc.root);
    proc.set(20, 'ray::Counter.inc\0');
    counter.count();
    proc.set(20, 'ray::Counter\0');
    counter.count();
    expect(counter.completed).toBe(1);
    counter.count();
    expect(counter.completed).toBe(1);
  });

  it('does not count workers that are killed after forgetBusy (a deadline passed)', () => {
    const proc = procTree();
    const counter = new TaskCounter(proc.root);
    proc.set(30, 'ray::work\0');
    counter.count();
    counter.forgetBusy();
    proc.remove(30);
    counter.count();
    expect(counter.completed).toBe(0);
  });
});

describe('tasksByName', () => {
  it('sorts by count, then name, and keeps at most 50 names of at most 200 characters', () => {
    const names: Record<string, number> = { b: 2, a: 2, c: 5, [`x${'y'.repeat(300)}`]: 1 };
    for (let i = 0; i < 60; i += 1) names[`t${String(i).padStart(2, '0')}`] = 1;
    const list = tasksByName(names);
    expect(list).toHaveLength(MAX_TASK_NAMES);
    expect(list.slice(0, 3)).toEqual([
      { name: 'c', count: 5 },
      { name: 'a', count: 2 },
      { name: 'b', count: 2 },
    ]);
    expect(list.every((entry) => entry.name.length <= 200)).toBe(true);
    expect(tasksByName({})).toEqual([]);
  });
});
