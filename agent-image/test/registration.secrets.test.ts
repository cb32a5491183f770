/**
 * Issue 8, item 2, agent side: what registration leaves for a Ray task to read, and the proof it needs to take a
 * known install ID again. The real manager runs in-process over real TLS (throwaway CA); the state directory is a
 * real temp directory.
 *
 * - After the first registration the enrollment token file is removed from the state volume (Ray tasks run as the
 *   agent's uid and could read it there); a file outside it, or one that cannot be removed, stays with one status
 *   warning saying so. A restart then finds no token file there and carries on with its saved credentials.
 * - Registering a known install ID needs its current credential (or the same enrollment token): without it the
 *   manager answers 409 install_id_taken, which is not retried and says what to do.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { ManagerServer } from '@ray-agent/manager/server';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { loadConfig } from '../src/config/agent-config.js';
import type { ManagerEndpoints } from '../src/config/manager-url.js';
import { createLogger, type Logger } from '../src/log.js';
import { ManagerClient, ManagerError } from '../src/manager/manager-client.js';
import { InstallIdTakenError, type RegisterOptions, register } from '../src/manager/registration.js';
import { StateStore } from '../src/state/state-store.js';
import { Backoff } from '../src/supervisor/backoff.js';
import {
  buildManager,
  bundleFixture,
  capturedLog,
  caught,
  connectingHeartbeat,
  type InProcessManager,
  managerEndpoints,
  registerRequest,
  tempDir,
  tempDirForSuite,
} from './helpers.js';

const TOKEN_A = 'enroll_secrets_A_0123456789abcdefghijklmnopq';
const TOKEN_B = 'enroll_secrets_B_0123456789abcdefghijklmnopq';
const INTERVAL = 10;

let inProcess: InProcessManager;
let manager: ManagerServer;
let endpoints: ManagerEndpoints;
let caFile: string;
let child: string;
let childDir: { dir: string; remove: () => void };
const registerCalls: number[] = [];
/** Whether each registration carried a currentCredential, as the manager received it. */
const proofsSent: boolean[] = [];

beforeAll(async () => {
  inProcess = await buildManager(
    'registration-secrets-',
    [
      [TOKEN_A, 'fleet a'],
      [TOKEN_B, 'fleet b'],
    ],
    INTERVAL,
  );
  ({ manager, caFile } = inProcess);
  manager.addHook('preHandler', async (request) => {
    if (request.url === '/api/register')
      proofsSent.push((request.body as { currentCredential?: unknown }).currentCredential !== undefined);
  });
  manager.addHook('onResponse', async (request, reply) => {
    if (request.url === '/api/register') registerCalls.push(reply.statusCode);
  });
  await manager.listen({ host: '127.0.0.1', port: 0 });
  endpoints = managerEndpoints(manager.server.address());
  // Its own directory, readable by the agent's uid (the suite's holds the TLS key).
  childDir = tempDirForSuite('forget-token-child-');
  chmodSync(childDir.dir, 0o755);
  child = await bundleFixture('forget-token-child', childDir.dir);
});

afterAll(async () => {
  await inProcess.close();
  childDir.remove();
});

function client(): ManagerClient {
  const made = new ManagerClient(endpoints, { caFile });
  onTestFinished(() => made.close());
  return made;
}

/** A state directory that has run its preflight, as the agent's is before it registers. */
function freshState(): StateStore {
  const state = new StateStore(tempDir('agent-state-'));
  state.preflight();
  return state;
}

/** register() against the suite's manager with a quick backoff; the options are what each test varies. */
function registerWith(
  state: StateStore,
  token: string,
  options: { log?: Logger; onRetry?: (error: ManagerError) => void; proof?: RegisterOptions['current'] } = {},
) {
  return register(
    client(),
    state,
    registerRequest(state.installId()),
    token,
    endpoints.base,
    options.log ?? createLogger('silent'),
    new AbortController().signal,
    options.onRetry ?? (() => {}),
    new Backoff(5, 20),
    { current: options.proof },
  );
}

/** The controller's layout: the token in secrets/enrollment-token on the state volume, 0600. */
function stateWithTokenFile(token: string) {
  const dir = tempDir('agent-state-');
  mkdirSync(join(dir, 'secrets'), { mode: 0o700 });
  const tokenFile = join(dir, 'secrets', 'enrollment-token');
  writeFileSync(tokenFile, token, { mode: 0o600 });
  return { dir, tokenFile };
}

const configEnv = (dir: string, tokenFile: string) => ({
  RAY_HEAD: 'head.test:6379',
  MANAGER_URL: endpoints.register,
  STATE_DIR: dir,
  AGENT_TOKEN_FILE: tokenFile,
});

describe('the enrollment token file after the first registration', () => {
  it('is removed from the state volume once the credentials are saved; a restart carries on without it', async () => {
    const { dir, tokenFile } = stateWithTokenFile(TOKEN_A);
    expect(loadConfig(configEnv(dir, tokenFile)).token).toBe(TOKEN_A); // the first start reads it
    const warnings: string[] = [];
    const state = new StateStore(dir, { enrollmentTokenFile: tokenFile, onTokenFileKept: (w) => warnings.push(w) });
    state.preflight();
    const captured = capturedLog();
    let fileDuringRetry: boolean | undefined;
    const credentials = await registerWith(state, TOKEN_A, {
      log: captured.log,
      onRetry: () => {
        fileDuringRetry = existsSync(tokenFile);
      },
    });
    expect(fileDuringRetry).toBeUndefined(); // no retry was needed
    expect(credentials?.providerId).toMatch(/^[a-z0-9-]+$/);
    expect(state.loadCredentials()).toEqual(credentials);
    expect(existsSync(tokenFile)).toBe(false);
    expect(warnings).toEqual([]);
    const removed = captured.lines
      .map((line) => JSON.parse(line))
      .find((entry) => /removed the enrollment/.test(entry.msg));
    expect(removed).toMatchObject({ level: 30, file: tokenFile });
    expect(captured.lines.join('\n')).not.toContain(TOKEN_A);
    expect(captured.lines.join('\n')).not.toContain(credentials?.credential ?? 'no credential');
    // Nothing left on the volume holds the token.
    for (const name of readdirSync(dir, { recursive: true }) as string[]) {
      const path = join(dir, name);
      if (statSync(path).isFile()) expect(readFileSync(path, 'utf8')).not.toContain(TOKEN_A);
    }
    // The restart: the file the controller wrote is gone from the state volume, which is not a bad configuration.
    expect(loadConfig(configEnv(dir, tokenFile)).token).toBeUndefined();
    expect(new StateStore(dir, { enrollmentTokenFile: tokenFile }).forgetEnrollmentToken()).toEqual({ kind: 'none' });
  });

  it('outside the state volume (a host bind mount) is kept, with one warning saying Ray tasks can read it', async () => {
    const dir = tempDir('agent-state-');
    const tokenFile = join(tempDir('host-secrets-'), 'agent-token');
    writeFileSync(tokenFile, `${TOKEN_A}\n`);
    const warnings: string[] = [];
    const state = new StateStore(dir, { enrollmentTokenFile: tokenFile, onTokenFileKept: (w) => warnings.push(w) });
    state.preflight();
    const captured = capturedLog();
    await registerWith(state, TOKEN_A, { log: captured.log });
    expect(readFileSync(tokenFile, 'utf8')).toBe(`${TOKEN_A}\n`); // the person's file is theirs to remove
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(tokenFile);
    expect(warnings[0]).toMatch(/still readable by Ray tasks on this node/);
    expect(warnings[0]).toMatch(/remove it from the host/);
    const warned = captured.lines.map((line) => JSON.parse(line)).filter((entry) => entry.level === 40);
    expect(warned.map((entry) => entry.msg)).toEqual([warnings[0]]);
    state.forgetEnrollmentToken();
    expect(warnings).toHaveLength(1); // once, not every time
  });

  it('on the state volume but not removable by the agent is kept, with one warning naming the cause', () => {
    const dir = tempDir('agent-state-');
    chmodSync(dir, 0o755);
    const secrets = join(dir, 'secrets');
    mkdirSync(secrets, { mode: 0o755 });
    const tokenFile = join(secrets, 'enrollment-token');
    writeFileSync(tokenFile, TOKEN_A, { mode: 0o644 });
    // The agent's uid can read the file but not unlink it: as under a read-only mount of the secrets directory.
    const root = process.getuid?.() === 0;
    if (root) chownSync(dir, 1000, 1000);
    else chmodSync(secrets, 0o555);
    onTestFinished(() => chmodSync(secrets, 0o755));
    const run = spawnSync(process.execPath, [child], {
      env: { STATE_DIR: dir, TOKEN_FILE: tokenFile, PATH: process.env.PATH ?? '' },
      encoding: 'utf8',
      ...(root ? { uid: 1000, gid: 1000 } : {}),
    });
    expect(run.stderr).toBe('');
    const result = JSON.parse(run.stdout);
    expect(result.first).toMatchObject({ kind: 'kept', path: tokenFile });
    expect(result.first.warning).toMatch(/could not be removed \(EACCES\)/);
    expect(result.first.warning).toMatch(/still readable by Ray tasks on this node/);
    expect(result.second.kind).toBe('kept');
    expect(result.warnings).toEqual([result.first.warning]);
    expect(readFileSync(tokenFile, 'utf8')).toBe(TOKEN_A);
  });

  it('an empty token file (what an older controller wrote without a token) means no token, not a bad one', () => {
    const { dir, tokenFile } = stateWithTokenFile('');
    expect(loadConfig(configEnv(dir, tokenFile)).token).toBeUndefined();
    writeFileSync(tokenFile, '\n');
    expect(loadConfig(configEnv(dir, tokenFile)).token).toBeUndefined();
  });

  it('a missing token file outside the state volume is still a configuration error naming the file', () => {
    const dir = tempDir('agent-state-');
    const missing = join(tempDir('host-secrets-'), 'agent-token');
    expect(() => loadConfig(configEnv(dir, missing))).toThrow(/^AGENT_TOKEN_FILE: file ".*agent-token" does not exist/);
  });
});

describe('registering a known install ID again needs proof', () => {
  it('without its current credential and with another enrollment token: install_id_taken, not retried', async () => {
    const state = freshState();
    const installId = state.installId();
    const first = await registerWith(state, TOKEN_A);
    registerCalls.length = 0;
    const retries: ManagerError[] = [];
    const error = await caught(registerWith(state, TOKEN_B, { onRetry: (e) => retries.push(e) }));
    expect(error).toBeInstanceOf(InstallIdTakenError);
    const message = (error as Error).message;
    expect(message).toContain(installId);
    expect(message).toMatch(/give this agent its own state volume/);
    expect(message).toMatch(/ask the cluster's operator to remove the provider/);
    expect(message).not.toContain(TOKEN_A);
    expect(message).not.toContain(TOKEN_B);
    expect(retries).toEqual([]);
    expect(registerCalls).toEqual([409]);
    expect(state.loadCredentials()).toEqual(first); // nothing overwritten
  });

  it('with its current credential: the same provider, a fresh credential, and the old one stops working', async () => {
    const state = freshState();
    const first = await registerWith(state, TOKEN_A);
    const second = await registerWith(state, TOKEN_B, { proof: first });
    expect(second?.providerId).toBe(first?.providerId);
    expect(second?.credential).not.toBe(first?.credential);
    expect(state.loadCredentials()).toEqual(second);
    const beat = (credential: string) =>
      client().heartbeat(
        connectingHeartbeat(second?.providerId ?? '', '2f0e3b1c-6a5d-4e7f-9b8a-1c2d3e4f5a6b'),
        credential,
      );
    expect(proofsSent.at(-1)).toBe(true);
    expect((await beat(second?.credential ?? '')).body.ok).toBe(true);
    const stale = await caught(beat(first?.credential ?? ''));
    expect(stale).toBeInstanceOf(ManagerError);
    expect(stale).toMatchObject({ kind: 'http', status: 401 });
  });

  it('never sends a credential to a manager other than the one that issued it', async () => {
    const state = freshState();
    const first = await registerWith(state, TOKEN_A);
    proofsSent.length = 0;
    const error = await caught(
      registerWith(state, TOKEN_B, {
        proof: { credential: first?.credential ?? '', managerBase: 'https://another-manager.test' },
      }),
    );
    expect(proofsSent).toEqual([false]);
    expect(error).toBeInstanceOf(InstallIdTakenError);
  });
});
