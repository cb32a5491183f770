import { appendFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RayLogWatcher } from '../src/ray/log-watcher.js';
import { tempDir } from './helpers.js';

/** Lines as Ray's C++ components write them: `[date time,ms LEVEL pid tid] (component) file:line: message`. */
const raylet = (level: string, message: string) => `[2026-05-01 10:00:00,123 ${level} 1234 5678] (raylet) ${message}`;

function watcher(dir: string) {
  const reported: string[] = [];
  const watch = new RayLogWatcher(dir, (line) => reported.push(line));
  return {
    /** Polls and returns only what this poll reported. */
    poll() {
      const before = reported.length;
      watch.poll();
      return reported.slice(before);
    },
  };
}

describe('RayLogWatcher', () => {
  it('reports only error lines appended after it started', () => {
    const dir = tempDir('agent-logs-');
    const file = join(dir, 'raylet.out');
    writeFileSync(
      file,
      `${[raylet('I', 'main.cc:10: Raylet started'), raylet('E', 'old.cc:1: an error from an earlier session')].join('\n')}\n`,
    );
    const logs = watcher(dir);
    expect(logs.poll()).toEqual([]);

    appendFileSync(
      file,
      `${[
        raylet('I', 'node_manager.cc:100: all good'),
        raylet('W', 'node_manager.cc:101: a warning'),
        raylet('E', 'node_manager.cc:102: Failed to connect to the GCS'),
        '2026-05-01 10:00:01,000\tERROR worker.py:12 -- a Python error',
      ].join('\n')}\n`,
    );
    expect(logs.poll()).toEqual([
      raylet('E', 'node_manager.cc:102: Failed to connect to the GCS'),
      '2026-05-01 10:00:01,000\tERROR worker.py:12 -- a Python error',
    ]);
    expect(logs.poll()).toEqual([]);

    appendFileSync(file, `${raylet('C', 'node_manager.cc:200: Check failed: x == y')}\n`);
    expect(logs.poll()).toEqual([raylet('C', 'node_manager.cc:200: Check failed: x == y')]);
  });

  it('re-reads a file that shrank (a new session) from its start', () => {
    const dir = tempDir('agent-logs-');
    const file = join(dir, 'raylet.out');
    writeFileSync(file, `${raylet('I', 'x.cc:1: '.padEnd(2_000, 'x'))}\n`);
    const logs = watcher(dir);
    expect(logs.poll()).toEqual([]);
    writeFileSync(file, `${raylet('E', 'gcs_client.cc:5: new session error')}\n`);
    expect(logs.poll()).toEqual([raylet('E', 'gcs_client.cc:5: new session error')]);
  });

  it('re-reads a file replaced by another one at the same path, even a larger one, from its start', () => {
    const dir = tempDir('agent-logs-');
    const file = join(dir, 'raylet.out');
    writeFileSync(file, `${raylet('I', 'x.cc:1: short')}\n`);
    const logs = watcher(dir);
    expect(logs.poll()).toEqual([]);
    const next = join(dir, 'raylet.out.next');
    writeFileSync(next, `${raylet('E', 'first.cc:1: the new file starts with an error')}\n${'filler\n'.repeat(200)}`);
    renameSync(next, file);
    expect(logs.poll()).toEqual([raylet('E', 'first.cc:1: the new file starts with an error')]);
  });

  it('reads a log file that appears after it started from its first line', () => {
    const dir = tempDir('agent-logs-');
    const logs = watcher(dir);
    expect(logs.poll()).toEqual([]);
    writeFileSync(
      join(dir, 'worker-0123abcd-01000000-42.err'),
      'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom\n',
    );
    expect(logs.poll()).toEqual(['Traceback (most recent call last):']);
  });

  it('starts following a log directory that did not exist yet, from the start of its files', () => {
    const base = tempDir('agent-logs-');
    const dir = join(base, 'session_latest', 'logs');
    const logs = watcher(dir);
    expect(logs.poll()).toEqual([]);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'raylet.err'), 'F0501 10:00:00.000 FATAL something broke\n');
    expect(logs.poll()).toEqual(['F0501 10:00:00.000 FATAL something broke']);
  });

  it('ignores files it does not watch and known harmless complaints', () => {
    const dir = tempDir('agent-logs-');
    const logs = watcher(dir);
    logs.poll();
    writeFileSync(join(dir, 'gcs_server.out'), `${raylet('E', 'not ours')}\n`);
    writeFileSync(join(dir, 'notes.txt'), 'ERROR not a Ray log\n');
    writeFileSync(
      join(dir, 'raylet.out'),
      `${raylet('E', 'metrics_agent_client.cc:1: Failed to connect to the metrics agent')}\n`,
    );
    expect(logs.poll()).toEqual([]);
  });

  it('keeps reported lines bounded in length', () => {
    const dir = tempDir('agent-logs-');
    const logs = watcher(dir);
    logs.poll();
    writeFileSync(join(dir, 'raylet.out'), `${raylet('E', 'x'.repeat(5_000))}\n`);
    const [line] = logs.poll();
    expect(line).toBeDefined();
    expect(line?.length).toBe(400);
  });
});
