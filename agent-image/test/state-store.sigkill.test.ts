/**
 * Issue 4, case 13: a process killed with SIGKILL while it saves credentials leaves the old or the new file,
 * never an empty or half-written one, and the next start's preflight removes the temp file it left.
 * The saver is a real child process running the real StateStore (bundled with esbuild); the kills are real SIGKILLs,
 * at each step of a save and at random moments of a save loop. (A process kill, not a power cut: the page cache
 * survives it, so this proves the write-rename protocol, not the fsyncs.)
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StateStore } from '../src/state/state-store.js';
import { credentialsFor } from './fixtures/save-credentials-child.js';
import { bundleFixture, tempDir, tempDirForSuite } from './helpers.js';

let suite: { dir: string; remove: () => void };
let child: string;

beforeAll(async () => {
  suite = tempDirForSuite('sigkill-');
  child = await bundleFixture('save-credentials-child', suite.dir);
});

afterAll(() => suite.remove());

interface ChildEnd {
  signal: NodeJS.Signals | null;
  code: number | null;
  /** Numbers whose save had returned before the child died. */
  reported: number[];
}

/** Runs the child; with `killAfterMs`, SIGKILLs it that long after its first completed save. */
function runChild(env: Record<string, string>, killAfterMs?: number): Promise<ChildEnd> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child], { env: { ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let armed = false;
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      if (killAfterMs !== undefined && !armed) {
        armed = true;
        setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
      }
    });
    proc.on('error', reject);
    proc.on('close', (code, signal) =>
      resolve({ code, signal, reported: out.split('\n').filter(Boolean).map(Number) }),
    );
  });
}

function providerNumber(providerId: string): number {
  return Number(providerId.replace('provider-', ''));
}

function tempFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.includes('.tmp-'));
}

describe('SIGKILL while saving credentials', () => {
  // Each call writeFileAtomic makes, in order: open temp, write, fsync, close, rename, open dir, fsync dir, close dir.
  const steps: Array<[string, 'old' | 'new', boolean]> = [
    ['openSync:1', 'old', false],
    ['writeSync:1', 'old', true],
    ['fsyncSync:1', 'old', true],
    ['closeSync:1', 'old', true],
    ['renameSync:1', 'old', true],
    ['openSync:2', 'new', false],
    ['fsyncSync:2', 'new', false],
    ['closeSync:2', 'new', false],
  ];
  it.each(steps)('killed just before %s: the %s file, whole', async (killAt, expected, leavesTemp) => {
    const dir = tempDir('agent-state-');
    const store = new StateStore(dir);
    store.preflight();
    store.saveCredentials(credentialsFor(1));
    const end = await runChild({ SAVE_DIR: dir, START: '1', KILL_AT: killAt });
    expect(end.signal).toBe('SIGKILL');
    expect(statSync(store.credentialsPath).size).toBeGreaterThan(0);
    expect(new StateStore(dir).loadCredentials()).toEqual(credentialsFor(expected === 'old' ? 1 : 2));
    expect(tempFiles(dir)).toHaveLength(leavesTemp ? 1 : 0);
    new StateStore(dir).preflight(); // the next start
    expect(readdirSync(dir)).toEqual(['credentials.json']);
  });

  it('30 kills at random moments of a save loop: always the last saved or the one being saved', async () => {
    const dir = tempDir('agent-state-');
    const store = new StateStore(dir);
    store.preflight();
    store.saveCredentials(credentialsFor(0));
    let current = 0;
    let tempsLeft = 0;
    let renamedUnreported = 0;
    for (let kill = 0; kill < 30; kill += 1) {
      const end = await runChild({ SAVE_DIR: dir, START: String(current) }, Math.floor(Math.random() * 8));
      expect(end.signal).toBe('SIGKILL');
      const lastReturned = end.reported.at(-1) ?? current;
      expect(statSync(store.credentialsPath).size).toBeGreaterThan(0);
      const loaded = new StateStore(dir).loadCredentials(); // throws CorruptCredentialsError on a torn file
      const n = providerNumber(loaded?.providerId ?? '');
      expect(loaded).toEqual(credentialsFor(n));
      expect([lastReturned, lastReturned + 1]).toContain(n);
      if (n === lastReturned + 1) renamedUnreported += 1;
      tempsLeft += tempFiles(dir).length;
      new StateStore(dir).preflight();
      expect(readdirSync(dir)).toEqual(['credentials.json']);
      current = n;
    }
    expect(current).toBeGreaterThan(0);
    console.warn(
      `sigkill: 30 kills, ${current} saves in all, ${tempsLeft} temp files left mid-save (removed by preflight), ${renamedUnreported} kills after the rename`,
    );
  });
});
