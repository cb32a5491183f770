import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LeaveReport, RegisterResponse } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type LeaveDeps, leaveCluster } from '../src/app/leave.js';
import { TokenVault } from '../src/app/token-vault.js';
import { AgentContainer } from '../src/container/agent-container.js';
import { resolveDockerEndpointFromProcess } from '../src/engine/docker-endpoint.js';
import { createDockerode } from '../src/engine/docker-engine.js';
import { docker as dockerCli, dockerQuiet, removeByPrefix, runPrefix } from './support/docker-cli.js';
import { freePort } from './support/free-port.js';
import { buildTestImage, engineLeftovers, standInPair, TestManager } from './support/leave-fixtures.js';
import { testKeychainCodec } from './support/test-keychain-codec.js';

/**
 * "Leave this cluster" on the machine's real engine against the real manager over TLS. The pair is a stand-in
 * with the controller's names, labels and mounts (no Ray), its state volume holding a credential the real manager
 * issued. Each case checks what the engine, the file system and the manager say afterwards, not what leave claims.
 */
const prefix = runPrefix('leave');
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const VALID_TOKEN = 'a'.repeat(43);
let dockerode: Dockerode;
const manager = new TestManager();
const dirs: string[] = [];
const images = new Set<string>();
let count = 0;

beforeAll(async () => {
  dockerode = createDockerode(resolveDockerEndpointFromProcess());
  await manager.start();
}, 120_000);

afterAll(async () => {
  await removeByPrefix(prefix);
  for (const image of images) await dockerQuiet(['image', 'rm', '-f', image]);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await manager.stop();
}, 120_000);

interface Setup {
  name: string;
  image: string;
  settingsDir: string;
  vault: TokenVault;
  reg: RegisterResponse | null;
  deps: LeaveDeps;
  lines: string[];
}

/** A registered (or not) stand-in pair, its own image, a settings file and a saved token. */
async function setUp(options: { registered?: boolean } = {}): Promise<Setup> {
  count += 1;
  const name = `${prefix}-${count}`;
  const image = `${prefix}-img-${count}:test`;
  images.add(image);
  await buildTestImage(dockerode, image);
  const reg = options.registered === false ? null : await manager.register();
  await standInPair(
    dockerode,
    name,
    image,
    reg === null ? null : { providerId: reg.providerId, credential: reg.credential },
  );
  const settingsDir = mkdtempSync(path.join(tmpdir(), 'ra-leave-settings-'));
  dirs.push(settingsDir);
  writeFileSync(path.join(settingsDir, 'config.json'), '{\n\t"version": 4\n}\n');
  writeFileSync(path.join(settingsDir, 'config.json.corrupt-2026-01-01T00-00-00-000Z'), 'not json');
  const vault = new TokenVault(settingsDir, testKeychainCodec());
  expect(vault.set(VALID_TOKEN)).toEqual({ ok: true });
  const lines: string[] = [];
  const deps: LeaveDeps = {
    docker: dockerode,
    agent: new AgentContainer(dockerode, { name }),
    settingsDir,
    vault,
    managerUrl: `${manager.url}/api/register`,
    managerCaPem: manager.caPem,
    image,
    log: (line) => lines.push(line),
  };
  return { name, image, settingsDir, vault, reg, deps, lines };
}

/** What the settings directory still holds. */
const settingsLeft = (s: Setup) => readdirSync(s.settingsDir);

describe('leaveCluster', { timeout: 240_000 }, () => {
  test('a clean leave: drained, deregistered, everything removed, and the report lists nothing left', async () => {
    const s = await setUp();
    if (s.reg === null) throw new Error('registered');
    expect(await manager.heartbeat(s.reg)).toBe(200);

    const report = await leaveCluster(s.deps);

    expect(report.leftovers, s.lines.join('\n')).toEqual([]);
    expect(report.deregistered).toBe(true);
    expect(report.removed).toEqual(
      expect.arrayContaining([
        `provider ${s.reg.providerId} at the manager (deregistered)`,
        `the container ${s.name}`,
        `the container ${s.name}-tunnel`,
        `the volume ${s.name}-state`,
        `the volume ${s.name}-tunnel`,
        `the image ${s.image}`,
        'the saved enrollment token',
        'the settings',
      ]),
    );
    expect(s.lines).toContain('leave: the agent stopped');
    expect(await engineLeftovers(dockerode, s.name, s.image)).toEqual([]);
    expect(settingsLeft(s)).toEqual([]);
    expect(s.vault.state().stored).toBe(false);
    expect(await manager.provider(s.reg.providerId)).toMatchObject({ health: 'left', revokedAt: null });
    expect(await manager.heartbeat(s.reg)).toBe(401);
    // No secret in what leave says.
    expect(JSON.stringify(report) + s.lines.join('\n')).not.toContain(s.reg.credential);
  });

  test('a machine that never registered: nothing to tell the manager, not an error', async () => {
    const s = await setUp({ registered: false });
    const report = await leaveCluster(s.deps);
    expect(report).toMatchObject({ deregistered: false, leftovers: [] });
    expect(await engineLeftovers(dockerode, s.name, s.image)).toEqual([]);
    expect(settingsLeft(s)).toEqual([]);
  });

  test('an unreachable manager: the rest still goes, and the one leftover says the manager was not told', async () => {
    const s = await setUp();
    if (s.reg === null) throw new Error('registered');
    const closed = await freePort();
    const report = await leaveCluster({ ...s.deps, managerUrl: `https://localhost:${closed}` });
    expect(report.deregistered).toBe(false);
    expect(report.leftovers).toHaveLength(1);
    expect(report.leftovers[0]).toMatch(
      new RegExp(
        `^the manager was not told: https://localhost:${closed} could not be reached \\(ECONNREFUSED.*\\) \\(provider ${s.reg.providerId}; the cluster's operator can revoke it\\)$`,
      ),
    );
    expect(await engineLeftovers(dockerode, s.name, s.image)).toEqual([]);
    expect(settingsLeft(s)).toEqual([]);
    // The manager indeed still counts it in.
    expect((await manager.provider(s.reg.providerId)).leftAt).toBeNull();
  });

  test('what a step could not remove is what the query finds, with the reason; the image another container uses stays', async () => {
    const s = await setUp();
    // Someone's own container (not the app's) uses the tunnel volume and the image.
    const foreign = `${prefix}-foreign-${count}`;
    await dockerCli(['create', '--name', foreign, '-v', `${s.name}-tunnel:/data`, '--entrypoint', 'true', s.image]);

    const report = await leaveCluster(s.deps);
    expect(report.deregistered).toBe(true);
    expect(report.leftovers).toHaveLength(1);
    expect(report.leftovers[0]).toMatch(
      new RegExp(`^the volume ${s.name}-tunnel: it could not be removed \\(.*in use`),
    );
    expect(s.lines).toContain(`leave: kept the image ${s.image}: other containers use it (${foreign})`);
    expect(await engineLeftovers(dockerode, s.name, s.image)).toEqual([`volume ${s.name}-tunnel`, `image ${s.image}`]);

    // Once that container is gone, leaving again finishes the job (the manager says it was gone already).
    await dockerCli(['rm', foreign]);
    const again = await leaveCluster(s.deps);
    expect(again).toMatchObject({ deregistered: true, leftovers: [] });
    expect(again.removed).toEqual([`the volume ${s.name}-tunnel`, `the image ${s.image}`]);
    expect(await engineLeftovers(dockerode, s.name, s.image)).toEqual([]);
  });

  test('containers removed by hand: the credential is read from the state volume alone, and the manager is told', async () => {
    const s = await setUp();
    if (s.reg === null) throw new Error('registered');
    await dockerCli(['rm', '-f', s.name, `${s.name}-tunnel`]);
    const report = await leaveCluster(s.deps);
    expect(report).toMatchObject({ deregistered: true, leftovers: [] });
    expect(report.removed).toContain(`provider ${s.reg.providerId} at the manager (deregistered)`);
    expect((await manager.provider(s.reg.providerId)).health).toBe('left');
    expect(await engineLeftovers(dockerode, s.name, s.image)).toEqual([]);
  });
});

describe('leave cut short (kill -9) and run again', { timeout: 240_000 }, () => {
  /** Runs leave in a child process that kills itself (SIGKILL) right after its `nth` log line matching `at`. */
  async function leaveKilled(s: Setup, at: RegExp, nth: number): Promise<string[]> {
    const child = spawn(
      path.join(ROOT, 'node_modules', '.bin', 'tsx'),
      [path.join(import.meta.dirname, 'support', 'leave-child.ts')],
      {
        env: {
          ...process.env,
          LEAVE_CHILD: JSON.stringify({
            name: s.name,
            settingsDir: s.settingsDir,
            managerUrl: s.deps.managerUrl,
            managerCaPem: manager.caPem,
            image: s.image,
            killAt: at.source,
            nth,
          }),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const signal = await new Promise<NodeJS.Signals | null>((resolve) =>
      child.once('exit', (_code, sig) => resolve(sig)),
    );
    // tsx runs the script in a child of its own and passes the signal on as its exit.
    const lines = stdout.split('\n').filter(Boolean);
    expect(
      lines.some((line) => line.startsWith('REPORT ')),
      `it said:\n${stdout}\n${stderr}`,
    ).toBe(false);
    expect(
      lines.filter((line) => at.test(line)),
      `it said:\n${stdout}\n${stderr}`,
    ).toHaveLength(nth);
    expect(signal ?? child.exitCode).not.toBe(0);
    return lines;
  }

  test.each([
    { at: /^leave: the agent stopped$/, nth: 1, what: 'after the agent stopped, before the manager was told' },
    { at: /^leave: deregistered provider /, nth: 1, what: 'right after the manager was told' },
    { at: /^leave: removed the container /, nth: 1, what: 'between removing the two containers' },
    { at: /^leave: removed the volume /, nth: 1, what: 'between removing the two volumes' },
    { at: /^leave: removed the image /, nth: 1, what: 'after the image, before the token and the settings' },
  ])('killed $what: leaving again finishes the job', async ({ at, nth }) => {
    const s = await setUp();
    if (s.reg === null) throw new Error('registered');
    await leaveKilled(s, at, nth);

    const report: LeaveReport = await leaveCluster(s.deps);
    expect(report.leftovers, s.lines.join('\n')).toEqual([]);
    expect(report.deregistered).toBe(true);
    expect(await engineLeftovers(dockerode, s.name, s.image)).toEqual([]);
    expect(settingsLeft(s)).toEqual([]);
    expect(existsSync(s.vault.file)).toBe(false);
    expect((await manager.provider(s.reg.providerId)).health).toBe('left');
    expect(await manager.heartbeat(s.reg)).toBe(401);
  });
});
