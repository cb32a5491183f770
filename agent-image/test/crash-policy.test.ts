/**
 * Issue 8, item 1: a fault nobody caught (an unhandled rejection, an uncaught exception, main() failing) is logged in
 * one line without secrets and ends the agent in a way a restart survives: through the supervisor's abandon() when
 * there is one (Ray killed, a last "stopped" heartbeat), with exit 1 (ExitCode.forced) either way. A second fault
 * while abandoning exits at once; an abandon that hangs is cut off by the policy's bound. Each case is a real child
 * process running the real policy and logger (bundled with esbuild).
 */
import { spawn } from 'node:child_process';
import { ExitCode } from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ABANDON_BOUND_MS, describeFault } from '../src/crash-policy.js';
import { bundleFixture, tempDirForSuite } from './helpers.js';

const SECRET = 'enroll_crash_0123456789abcdefghijklmnopqrstu';

let suite: { dir: string; remove: () => void };
let child: string;

beforeAll(async () => {
  suite = tempDirForSuite('crash-policy-');
  child = await bundleFixture('crash-policy-child', suite.dir);
});

afterAll(() => suite.remove());

interface End {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The logger's JSON lines. */
  logged: Array<Record<string, unknown>>;
  /** The child's own lines, without their "child: " prefix. */
  said: string[];
  stdout: string;
  stderr: string;
}

function runChild(env: Record<string, string>): Promise<End> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child], {
      env: { PATH: process.env.PATH ?? '', SECRET, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    proc.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    // Far beyond any case's expected run: only a policy that never exits meets it.
    const guard = setTimeout(() => proc.kill('SIGKILL'), 50_000);
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      clearTimeout(guard);
      const lines = stdout.split('\n').filter(Boolean);
      resolve({
        code,
        signal,
        logged: lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line)),
        said: lines.filter((line) => line.startsWith('child: ')).map((line) => line.slice('child: '.length)),
        stdout,
        stderr,
      });
    });
  });
}

function expectNoSecret(end: End): void {
  expect(end.stdout).not.toContain(SECRET);
  expect(end.stderr).not.toContain(SECRET);
}

describe('the crash policy', () => {
  it.each([
    ['an unhandled rejection', 'reject', 'unhandledRejection'],
    ['an uncaught exception', 'throw', 'uncaughtException'],
    ['main() failing', 'main-failed', 'mainFailed'],
  ])('%s without a supervisor: one fatal line without secrets, exit 1', async (_name, mode, fault) => {
    const end = await runChild({ MODE: mode, SUPERVISOR: 'no-supervisor' });
    expect(end.signal).toBeNull();
    expect(end.code).toBe(ExitCode.forced);
    expect(end.logged).toHaveLength(1);
    const [line] = end.logged;
    expect(line).toMatchObject({ level: 60, fault });
    expect(String(line?.msg)).toMatch(/^unexpected failure: the manager cut the body/);
    expect(String(line?.err)).toContain('Bearer [redacted]');
    expect(String(line?.stack)).toMatch(/crash-policy-child/);
    expect(end.said).toEqual([`exit ${ExitCode.forced}`]);
    expectNoSecret(end);
  });

  it('before the logger exists: one line on stderr, without secrets, exit 1', async () => {
    const end = await runChild({ MODE: 'before-logger-reject' });
    expect(end.code).toBe(ExitCode.forced);
    expect(end.stderr).toMatch(
      /^ray-agent: unexpected failure \(unhandledRejection\): Error: the manager cut the body/,
    );
    expect(end.logged).toEqual([]);
    expectNoSecret(end);
  });

  it('with a supervisor: abandon() is called once with the reason, then exit 1', async () => {
    const end = await runChild({ MODE: 'reject', SUPERVISOR: 'abandon' });
    expect(end.code).toBe(ExitCode.forced);
    expect(end.said).toHaveLength(2);
    expect(end.said[0]).toMatch(/^abandon unhandledRejection: Error: |^abandon unhandledRejection: the manager cut/);
    expect(end.said[0]).toContain('Bearer [redacted]');
    expect(end.said[1]).toBe(`exit ${ExitCode.forced}`);
    expectNoSecret(end);
  });

  it('with a supervisor whose abandon() exits by itself: its exit stands', async () => {
    const end = await runChild({ MODE: 'throw', SUPERVISOR: 'abandon-exits' });
    expect(end.code).toBe(ExitCode.forced);
    expect(end.said).toHaveLength(1);
    expect(end.said[0]).toMatch(/^abandon uncaughtException: /);
  });

  it('with a supervisor that has no abandon() yet: exits 1 without calling it', async () => {
    const end = await runChild({ MODE: 'reject', SUPERVISOR: 'old-supervisor' });
    expect(end.code).toBe(ExitCode.forced);
    expect(end.said).toEqual([`exit ${ExitCode.forced}`]);
  });

  it('a second fault while abandoning exits at once, not after the bound', async () => {
    const end = await runChild({ MODE: 'reject', SUPERVISOR: 'abandon-faults', BOUND_MS: '30000' });
    expect(end.code).toBe(ExitCode.forced);
    const messages = end.logged.map((line) => line.msg);
    expect(messages).toEqual([
      expect.stringMatching(/^unexpected failure: /),
      'a second unexpected failure while stopping: exiting now',
    ]);
    expect(end.logged[1]?.err).toBe('a second fault while abandoning');
    expect(end.said.at(-1)).toBe(`exit ${ExitCode.forced}`);
  });

  it('an abandon() that rejects counts as the second fault', async () => {
    const end = await runChild({ MODE: 'reject', SUPERVISOR: 'abandon-rejects', BOUND_MS: '30000' });
    expect(end.code).toBe(ExitCode.forced);
    expect(end.logged.map((line) => line.msg)).toEqual([
      expect.stringMatching(/^unexpected failure: /),
      'a second unexpected failure while stopping: exiting now',
    ]);
  });

  it('an abandon() that hangs is cut off by the bound', async () => {
    const end = await runChild({ MODE: 'reject', SUPERVISOR: 'abandon-hangs', BOUND_MS: '300' });
    expect(end.code).toBe(ExitCode.forced);
    expect(end.logged.map((line) => line.msg)).toEqual([
      expect.stringMatching(/^unexpected failure: /),
      'stopping after the failure did not finish: exiting now',
    ]);
  });

  it('bounds abandoning by the stop steps the supervisor itself bounds, and blanks secrets and bearer values', () => {
    expect(ABANDON_BOUND_MS).toBe(10_000);
    const error = new Error(`x ${SECRET} y`);
    const { message, stack } = describeFault(error, [SECRET, undefined, 'short']);
    expect(message).toBe('x [redacted] y');
    expect(stack).not.toContain(SECRET);
    expect(describeFault('authorization: Bearer abc.def', []).message).toBe('authorization: Bearer [redacted]');
  });
});
