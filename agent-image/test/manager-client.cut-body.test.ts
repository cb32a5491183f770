/**
 * Issue 8, item 1: an error while the manager's answer body is being read (the connection cut after the headers,
 * a body that stalls, the abort timer firing while bytes still trickle in) must be a retryable ManagerError, never a
 * raw stream error: in the heartbeat loop a raw error became an unhandled rejection that killed the agent, and in
 * registration it ended as exit 7 ("refused"). A real node:https server on 127.0.0.1 (throwaway CA) sends the
 * status line, the headers and part of a body, then cuts or stalls.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { HeartbeatRequest } from '@ray-agent/protocol';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import type { ManagerEndpoints } from '../src/config/manager-url.js';
import { createLogger } from '../src/log.js';
import { runHeartbeats } from '../src/manager/heartbeat-loop.js';
import { ManagerClient, ManagerError } from '../src/manager/manager-client.js';
import { register } from '../src/manager/registration.js';
import { type Credentials, StateStore } from '../src/state/state-store.js';
import { StatusModel } from '../src/status/status-model.js';
import { Backoff } from '../src/supervisor/backoff.js';
import {
  caught,
  makeTls,
  managerEndpoints,
  registerRequest,
  type TestTls,
  tempDir,
  tempDirForSuite,
} from './helpers.js';

const TOKEN = 'enroll_cutbody_0123456789abcdefghijklmnopqrs';
const CREDENTIAL = 'cred_cutbody_ZYXWVUTSRQPONMLKJIHGFEDCBA987654';
const PROVIDER_ID = 'cut-body-provider-1a2b';
const BOOT_ID = '0b6c2a9e-1f3d-4c5b-8a7e-6d5c4b3a2f10';
const log = createLogger('silent');

/** How the server answers one request: whole, or status + headers + part of the body and then trouble. */
type Step =
  | { kind: 'answer'; status: number; body: string }
  /** Sends the first half of the body, then destroys the socket: a reset after the headers. */
  | { kind: 'cut'; status: number; body: string }
  /** Sends the first half of the body and then nothing, keeping the connection open. */
  | { kind: 'stall'; status: number; body: string }
  /** Sends one byte of the body every `everyMs`, never finishing: only the whole-call timer can end it. */
  | { kind: 'trickle'; status: number; body: string; everyMs: number };

let suite: { dir: string; remove: () => void };
let tls: TestTls;
let server: Server;
let endpoints: ManagerEndpoints;
let script: Step[] = [];
const seen: string[] = [];
const timers = new Set<NodeJS.Timeout>();

const registered = (): string =>
  JSON.stringify({
    providerId: PROVIDER_ID,
    credential: CREDENTIAL,
    heartbeatIntervalSeconds: 10,
    serverTime: new Date().toISOString(),
  });
const accepted = (): string =>
  JSON.stringify({ ok: true, heartbeatIntervalSeconds: 1, serverTime: new Date().toISOString() });
const rejected = (): string =>
  JSON.stringify({ error: { code: 'invalid_credential', message: 'this provider credential is not valid' } });
/** What a busy, healthy agent reports: the same in a single heartbeat and in the loop's. */
const report = (): Omit<HeartbeatRequest, 'providerId' | 'sentAt' | 'bootId'> => ({
  state: 'contributing',
  rayNode: 'joined',
  cpuPercent: 1,
  memoryBytes: 1,
  memoryPercent: 1,
  activeTasks: 0,
  recentErrors: [],
});

beforeAll(async () => {
  suite = tempDirForSuite('cut-body-tls-');
  tls = makeTls(suite.dir);
  server = createServer({ key: readFileSync(tls.keyFile), cert: readFileSync(tls.certFile) }, (req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push(req.url ?? '');
      const step = script.shift() ?? {
        kind: 'answer',
        status: 500,
        body: JSON.stringify({ error: { code: 'script_exhausted', message: 'not expected' } }),
      };
      const bytes = Buffer.from(step.body);
      // The full length is announced, so the client knows the body is not complete when the trouble comes.
      res.writeHead(step.status, { 'content-type': 'application/json', 'content-length': String(bytes.length) });
      if (step.kind === 'answer') {
        res.end(bytes);
        return;
      }
      const half = bytes.subarray(0, Math.floor(bytes.length / 2));
      if (step.kind === 'cut') {
        res.write(half, () => setImmediate(() => req.socket.destroy()));
      } else if (step.kind === 'stall') {
        res.write(half);
      } else {
        res.flushHeaders();
        let sent = 0;
        const timer = setInterval(() => {
          if (sent >= bytes.length - 1 || res.destroyed) return clearInterval(timer);
          res.write(bytes.subarray(sent, sent + 1));
          sent += 1;
        }, step.everyMs);
        timers.add(timer);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoints = managerEndpoints(server.address(), '/api/register');
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  suite.remove();
});

beforeEach(() => {
  seen.length = 0;
  script = [];
});
afterEach(() => {
  for (const timer of timers) clearInterval(timer);
  timers.clear();
  server.closeAllConnections();
});

function client(timeoutMs = 10_000): ManagerClient {
  const made = new ManagerClient(endpoints, { caFile: tls.caFile, timeoutMs });
  onTestFinished(() => made.close());
  return made;
}

describe('ManagerClient when the answer body breaks', () => {
  it('a connection reset after the headers and half the body is a retryable network ManagerError', async () => {
    script = [{ kind: 'cut', status: 200, body: registered() }];
    const error = await caught(client().register(registerRequest(), TOKEN));
    expect(error).toBeInstanceOf(ManagerError);
    expect(error).toMatchObject({ kind: 'network', retryable: true });
    expect((error as Error).message).toMatch(/broke while it was sending its 200 answer/);
    expect((error as Error).message).not.toContain(TOKEN);
    expect(seen).toEqual(['/api/register']);
  });

  it('the same for a cut error answer (a 503 whose body never completes)', async () => {
    script = [
      { kind: 'cut', status: 503, body: JSON.stringify({ error: { code: 'busy', message: 'x'.repeat(400) } }) },
    ];
    const error = await caught(client().register(registerRequest(), TOKEN));
    expect(error).toMatchObject({ kind: 'network', retryable: true });
  });

  it('a body that stalls past the timeout is a retryable timeout ManagerError', async () => {
    script = [{ kind: 'stall', status: 200, body: accepted() }];
    const error = await caught(
      client(400).heartbeat(
        { providerId: PROVIDER_ID, bootId: BOOT_ID, ...report(), sentAt: new Date().toISOString() },
        CREDENTIAL,
      ),
    );
    expect(error).toBeInstanceOf(ManagerError);
    expect(error).toMatchObject({ kind: 'timeout', retryable: true });
    expect((error as Error).message).toMatch(/stalled while it was sending its 200 answer/);
  });

  it('the call timer firing while bytes still trickle in is a retryable timeout ManagerError', async () => {
    // Each byte comes well inside the idle timeout, so only the whole-call abort timer can end this body.
    script = [{ kind: 'trickle', status: 200, body: registered(), everyMs: 50 }];
    const error = await caught(client(600).register(registerRequest(), TOKEN));
    expect(error).toBeInstanceOf(ManagerError);
    expect(error).toMatchObject({ kind: 'timeout', retryable: true });
  });
});

describe('register() and the heartbeat loop through broken bodies', () => {
  it('register() retries a cut and a stalled body, then saves the credentials of the good answer once', async () => {
    script = [
      { kind: 'cut', status: 200, body: registered() },
      { kind: 'stall', status: 200, body: registered() },
      { kind: 'answer', status: 200, body: registered() },
    ];
    const store = new StateStore(tempDir('cut-body-state-'));
    store.preflight();
    let saves = 0;
    const save = store.saveCredentials.bind(store);
    store.saveCredentials = (credentials: Credentials) => {
      saves += 1;
      save(credentials);
    };
    const retries: ManagerError[] = [];
    const credentials = await register(
      client(500),
      store,
      { ...registerRequest(), installId: store.installId() },
      TOKEN,
      endpoints.base,
      log,
      new AbortController().signal,
      (error) => {
        retries.push(error);
        expect(existsSync(store.credentialsPath)).toBe(false);
      },
      new Backoff(5, 20),
    );
    expect(retries.map((error) => [error.kind, error.retryable])).toEqual([
      ['network', true],
      ['timeout', true],
    ]);
    expect(seen).toHaveLength(3);
    expect(credentials?.providerId).toBe(PROVIDER_ID);
    expect(saves).toBe(1);
    expect(store.loadCredentials()).toEqual(credentials);
  });

  it('the heartbeat loop keeps going through a cut and a stalled body, and recovers', async () => {
    const model = new StatusModel('0.1.0', 'head:6379', endpoints.base, {
      cpus: 2,
      memoryBytes: 4 * 1024 ** 3,
      objectStoreBytes: 1024 ** 3,
      shmBytes: null,
      source: 'env',
    });
    model.heartbeat.intervalSeconds = 1;
    const controller = new AbortController();
    onTestFinished(() => controller.abort());
    const states: Array<{ state: string; failures: number }> = [];
    script = [
      { kind: 'cut', status: 200, body: accepted() },
      { kind: 'stall', status: 200, body: accepted() },
      { kind: 'answer', status: 200, body: accepted() },
      { kind: 'answer', status: 401, body: rejected() },
    ];
    const record = setInterval(() => {
      const last = states.at(-1);
      const now = { state: model.heartbeat.state, failures: model.heartbeat.consecutiveFailures };
      if (!last || last.state !== now.state || last.failures !== now.failures) states.push(now);
    }, 5);
    onTestFinished(() => clearInterval(record));
    const outcome = await runHeartbeats(
      client(500),
      model,
      () => ({ providerId: PROVIDER_ID, credential: CREDENTIAL }),
      report,
      BOOT_ID,
      log,
      controller.signal,
      new Backoff(1, 5),
    );
    // The loop survived both broken bodies (no rejection) and ended only on the scripted 401.
    expect(outcome.kind).toBe('revoked');
    expect(seen).toEqual(['/api/heartbeat', '/api/heartbeat', '/api/heartbeat', '/api/heartbeat']);
    expect(states).toContainEqual({ state: 'failing', failures: 2 });
    expect(states).toContainEqual({ state: 'healthy', failures: 0 });
  });
});
