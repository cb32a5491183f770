import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { claimRunPid, RUN_PID_FILE, runningRunPid } from '../../src/cli/run-pid.js';
import { tempSettingsDir } from './run-cli.js';

let dir: string;
let remove: () => void;
beforeEach(() => {
  ({ dir, remove } = tempSettingsDir());
});
afterEach(() => remove());
const pidFile = () => path.join(dir, RUN_PID_FILE);

describe('the PID file of `ray-agent run`', () => {
  test('claims the folder, and releases it', () => {
    const claim = claimRunPid(dir);
    if (!('release' in claim)) throw new Error(`held by ${claim.heldBy}`);
    expect(readFileSync(pidFile(), 'utf8')).toBe(`${process.pid}\n`);
    claim.release();
    expect(runningRunPid(dir)).toBeNull();
  });

  test('a live run holds it', () => {
    // The test runner's parent stands in for another live run.
    writeFileSync(pidFile(), `${process.ppid}\n`);
    expect(runningRunPid(dir)).toBe(process.ppid);
    expect(claimRunPid(dir)).toEqual({ heldBy: process.ppid });
  });

  test('a file left by a killed run is taken over', () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid;
    writeFileSync(pidFile(), `${dead}\n`);
    expect(runningRunPid(dir)).toBeNull();
    const claim = claimRunPid(dir);
    expect('release' in claim).toBe(true);
    expect(readFileSync(pidFile(), 'utf8')).toBe(`${process.pid}\n`);
  });
});
