/**
 * The agent's manager client, registration and heartbeat loop against a scripted HTTPS server standing in for the
 * manager: a real node:https server on 127.0.0.1 with a certificate from a throwaway CA made by the openssl CLI.
 * Each test scripts the answers; the server records every request it receives.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer, type Server } from 'node:https';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { HeartbeatRequest, RegisterRequest } from '@ray-agent/protocol';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { type ManagerEndpoints, parseManagerUrl } from '../src/config/manager-url.js';
import { createLogger } from '../src/log.js';
import { runHeartbeats } from '../src/manager/heartbeat-loop.js';
import { ManagerClient, type ManagerClientOptions, ManagerError } from '../src/manager/manager-client.js';
import { EnrollmentRejectedError, register } from '../src/manager/registration.js';
import { type Credentials, StateStore } from '../src/state/state-store.js';
import { StatusModel } from '../src/status/status-model.js';
import { Backoff } from '../src/supervisor/backoff.js';
import {
  capturedLog,
  caught,
  makeTls,
  managerEndpoints,
  registerRequest,
  type TestTls,
  tempDir,
  tempDirForSuite,
  waitFor,
} from './helpers.js';

const TOKEN = 'enroll_0123456789abcdefghijklmnopqrstuvwxyzAB';
const CREDENTIAL = 'cred_ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxw';
const PROVIDER_ID = 'alices-desktop-7f3a';
const BOOT_ID = '7d5f9d2e-3c1b-4a8e-9f00-1b2c3d4e5f60';
const log = createLogger('silent');

/** The real state store, counting credential writes. */
class CountingStore extends StateStore {
  saves = 0;
  override saveCredentials(credentials: Credentials): void {
    this.saves += 1;
    super.saveCredentials(credentials);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The scripted server.

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** performance.now() when the request arrived. */
  at: number;
}
type Step = { status: number; body: string | Buffer; headers?: Record<string, string> } | { hang: true };
type Script = Step | ((seen: Seen) => Step);

const json = (status: number, value: unknown, headers: Record<string, string> = {}): Step => ({
  status,
  body: JSON.stringify(value),
  headers: { 'content-type': 'application/json', ...headers },
});
const errorBody = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
  json(status, { error: { code, message } }, headers);
const registered = () =>
  json(200, {
    providerId: PROVIDER_ID,
    credential: CREDENTIAL,
    heartbeatIntervalSeconds: 10,
    serverTime: new Date().toISOString(),
  });
const beatAccepted = (intervalSeconds = 1, serverTime = new Date()) =>
  json(200, { ok: true, heartbeatIntervalSeconds: intervalSeconds, serverTime: serverTime.toISOString() });
const html = (status: number): Step => ({
  status,
  body: '<!doctype html><html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>',
  headers: { 'content-type': 'text/html' },
});

let tlsDir: { dir: string; remove: () => void };
let tls: TestTls;
let server: Server;
let endpoints: ManagerEndpoints;
const seen: Seen[] = [];
let script: Script[] = [];

function play(...steps: Script[]): void {
  seen.length = 0;
  script = steps;
}

beforeAll(async () => {
  tlsDir = tempDirForSuite('agent-tls-');
  tls = makeTls(tlsDir.dir);
  server = createServer({ key: readFileSync(tls.keyFile), cert: readFileSync(tls.certFile) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const entry: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: performance.now(),
      };
      seen.push(entry);
      const next = script.shift();
      const step = typeof next === 'function' ? next(entry) : next;
      if (step === undefined) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ error: { code: 'script_exhausted', message: 'the test did not expect this request' } }),
        );
        return;
      }
      if ('hang' in step) return; // never answer
      res.writeHead(step.status, step.headers ?? {});
      res.end(step.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoints = managerEndpoints(server.address(), '/api/register');
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  tlsDir.remove();
});

beforeEach(() => play());
afterEach(() => server.closeAllConnections());

/** A client that trusts the test CA unless told otherwise; `client({})` trusts only the public roots. */
function client(options: ManagerClientOptions = { caFile: tls.caFile }): ManagerClient {
  const made = new ManagerClient(endpoints, options);
  onTestFinished(() => made.close());
  return made;
}

function expectRegisterRequests(body: RegisterRequest): void {
  for (const request of seen) {
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/api/register');
    expect(request.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(request.headers['content-type']).toBe('application/json');
    const parsed = RegisterRequest.safeParse(JSON.parse(request.body));
    expect(parsed.error?.issues ?? []).toEqual([]);
    expect(parsed.data).toEqual(body);
  }
}

// ---------------------------------------------------------------------------------------------------------------

describe('registration against the scripted manager', () => {
  it('retries 503 three times, then registers on the 4th request and saves the credentials once', async () => {
    play(
      errorBody(503, 'unavailable', 'the manager is starting'),
      { status: 503, body: 'Service Unavailable', headers: { 'content-type': 'text/plain' } },
      errorBody(503, 'unavailable', 'the manager is starting'),
      registered(),
    );
    const dir = tempDir('agent-state-');
    const store = new CountingStore(dir);
    store.preflight();
    const body = { ...registerRequest(), installId: store.installId() };
    const retries: ManagerError[] = [];
    const waits: number[] = [];
    const captured = capturedLog();
    const credentials = await register(
      client(),
      store,
      body,
      TOKEN,
      endpoints.base,
      captured.log,
      new AbortController().signal,
      (error, waitMs) => {
        retries.push(error);
        waits.push(waitMs);
        expect(existsSync(store.credentialsPath)).toBe(false); // nothing is written before a good answer
      },
      new Backoff(20, 200),
    );
    expect(seen).toHaveLength(4);
    expectRegisterRequests(body); // the same install ID every time: the idempotency key
    expect(retries.map((error) => error.status)).toEqual([503, 503, 503]);
    // Full jitter: the n-th wait lies in [base/2, min(cap, base * 2^n)], and the next request waited it out.
    waits.forEach((wait, n) => {
      expect(wait).toBeGreaterThanOrEqual(10);
      expect(wait).toBeLessThanOrEqual(Math.min(200, 20 * 2 ** n));
      expect((seen[n + 1]?.at ?? 0) - (seen[n]?.at ?? 0)).toBeGreaterThanOrEqual(wait - 2);
    });
    expect(store.saves).toBe(1);
    const messages = captured.lines.map((line) => JSON.parse(line).msg);
    expect(messages.filter((msg) => msg === 'registration failed; retrying')).toHaveLength(1);
    expect(messages.filter((msg) => msg === 'registered with the manager')).toHaveLength(1);
    expect(JSON.parse(captured.lines.at(-1) ?? '{}')).toMatchObject({ attempts: 4, providerId: PROVIDER_ID });
    expect(captured.lines.join('\n')).not.toContain(TOKEN);
    expect(captured.lines.join('\n')).not.toContain(CREDENTIAL);
    console.warn(`register 503x3: 4 requests, waits ${waits.join('/')} ms, ${store.saves} credentials write`);
    expect(credentials).toMatchObject({
      version: 1,
      providerId: PROVIDER_ID,
      credential: CREDENTIAL,
      managerBase: endpoints.base,
    });
    expect(readdirSync(dir).filter((name) => name.startsWith('credentials'))).toEqual(['credentials.json']);
    expect(new StateStore(dir).loadCredentials()).toEqual(credentials);
  });

  it('stops at 401: EnrollmentRejectedError, nothing saved, no retry', async () => {
    play(errorBody(401, 'invalid_token', 'the enrollment token is not valid'), registered());
    const dir = tempDir('agent-state-');
    const store = new StateStore(dir);
    store.preflight();
    const retries: ManagerError[] = [];
    const error = await caught(
      register(
        client(),
        store,
        registerRequest(),
        TOKEN,
        endpoints.base,
        log,
        new AbortController().signal,
        (e) => retries.push(e),
        new Backoff(1, 5),
      ),
    );
    expect(error).toBeInstanceOf(EnrollmentRejectedError);
    expect((error as Error).message).toMatch(/rejected the enrollment token \(401\)/);
    expect((error as Error).message).not.toContain(TOKEN);
    expect(seen).toHaveLength(1);
    expect(retries).toEqual([]);
    expect(existsSync(store.credentialsPath)).toBe(false);
  });

  it('does not retry another 4xx from the manager', async () => {
    play(errorBody(400, 'bad_request', 'hostname is missing'), registered());
    const store = new StateStore(tempDir('agent-state-'));
    const error = await caught(
      register(
        client(),
        store,
        registerRequest(),
        TOKEN,
        endpoints.base,
        log,
        new AbortController().signal,
        () => {},
        new Backoff(1, 5),
      ),
    );
    expect(error).toBeInstanceOf(ManagerError);
    expect(error).toMatchObject({ kind: 'http', status: 400, code: 'bad_request', retryable: false });
    expect(seen).toHaveLength(1);
  });

  it('retries an HTML page, even one sent with 200 or a 4xx by a proxy, as invalid_response', async () => {
    play(
      { status: 200, body: '<html><body>Welcome to nginx!</body></html>', headers: { 'content-type': 'text/html' } },
      html(502),
      html(404),
      registered(),
    );
    const store = new StateStore(tempDir('agent-state-'));
    const retries: ManagerError[] = [];
    const credentials = await register(
      client(),
      store,
      registerRequest(),
      TOKEN,
      endpoints.base,
      log,
      new AbortController().signal,
      (error) => retries.push(error),
      new Backoff(1, 5),
    );
    expect(credentials?.providerId).toBe(PROVIDER_ID);
    expect(seen).toHaveLength(4);
    expect(retries.map((error) => [error.kind, error.status])).toEqual([
      ['invalid_response', 200],
      ['invalid_response', 502],
      ['invalid_response', 404],
    ]);
    expect(retries[0]?.message).toMatch(/unexpected body: <html>/);
  });

  // Issue 4, case 4: each bad answer is rejected by the schema or the size limit, nothing is persisted, and the
  // agent's log keeps only a short excerpt of what the server sent.
  const tenMegabytes = Buffer.alloc(10 * 1024 * 1024, 'x');
  tenMegabytes.write('{"providerId":"', 0);
  it.each([
    [
      'malformed JSON',
      { status: 200, body: `{"providerId": "${PROVIDER_ID}", "credential": "${'y'.repeat(5_000)}`, headers: {} },
      /unexpected body: \{"providerId": "alices-desktop-7f3a", "credential": "y+…$/,
    ],
    [
      'wrong types',
      json(200, { providerId: 42, credential: true, heartbeatIntervalSeconds: '10', serverTime: 'yesterday' }),
      /unexpected body: \{"providerId":42,"credential":true,"heartbeatIntervalSeconds":"10","serverTime":"yesterday"\}$/,
    ],
    [
      'a 10 MB body',
      { status: 200, body: tenMegabytes, headers: { 'content-type': 'application/json' } },
      /more than 65536 bytes$/,
    ],
  ] as const)('rejects %s from register: retried, nothing persisted, a short log line', async (name, bad, message) => {
    play(bad, registered());
    const store = new CountingStore(tempDir('agent-state-'));
    store.preflight();
    const captured = capturedLog();
    const retries: ManagerError[] = [];
    const credentials = await register(
      client(),
      store,
      registerRequest(),
      TOKEN,
      endpoints.base,
      captured.log,
      new AbortController().signal,
      (error) => {
        retries.push(error);
        expect(existsSync(store.credentialsPath)).toBe(false);
      },
      new Backoff(1, 5),
    );
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ kind: 'invalid_response', status: 200, retryable: true });
    expect(retries[0]?.message).toMatch(message);
    // The excerpt of the body is at most 200 characters (plus an ellipsis).
    const excerpt = retries[0]?.message.split('unexpected body: ')[1] ?? '';
    expect(excerpt.length).toBeLessThanOrEqual(201);
    expect(credentials?.providerId).toBe(PROVIDER_ID);
    expect(store.saves).toBe(1);
    const warn = captured.lines.map((line) => JSON.parse(line)).find((entry) => entry.level === 40);
    expect(warn).toMatchObject({ msg: 'registration failed; retrying', status: 200, err: retries[0]?.message });
    for (const line of captured.lines) expect(Buffer.byteLength(line)).toBeLessThan(512);
    const longest = Math.max(...captured.lines.map((line) => Buffer.byteLength(line)));
    console.warn(`register answered with ${name}: rejected, 1 retry, longest log line ${longest} B`);
  });

  it('stops retrying when its signal aborts', async () => {
    const controller = new AbortController();
    play((request) => {
      controller.abort();
      return errorBody(503, 'unavailable', `busy ${request.url}`);
    });
    const store = new StateStore(tempDir('agent-state-'));
    const outcome = await register(
      client(),
      store,
      registerRequest(),
      TOKEN,
      endpoints.base,
      log,
      controller.signal,
      () => {},
      new Backoff(60_000, 60_000),
    );
    expect(outcome).toBeUndefined();
    expect(seen).toHaveLength(1);
    expect(existsSync(store.credentialsPath)).toBe(false);
  });
});

describe('ManagerClient against the scripted manager', () => {
  it('refuses an answer over 64 KiB', async () => {
    const padded = {
      providerId: PROVIDER_ID,
      credential: CREDENTIAL,
      heartbeatIntervalSeconds: 10,
      serverTime: new Date().toISOString(),
      pad: 'x'.repeat(70 * 1024),
    };
    play(json(200, padded));
    const error = await caught(client().register(registerRequest(), TOKEN));
    expect(error).toBeInstanceOf(ManagerError);
    expect(error).toMatchObject({ kind: 'invalid_response', status: 200, retryable: true });
    expect((error as Error).message).toMatch(/more than 65536 bytes/);
  });

  it('accepts an answer just under 64 KiB', async () => {
    const base = {
      providerId: PROVIDER_ID,
      credential: CREDENTIAL,
      heartbeatIntervalSeconds: 10,
      serverTime: new Date().toISOString(),
    };
    const room = 64 * 1024 - JSON.stringify({ ...base, pad: '' }).length;
    play(json(200, { ...base, pad: 'x'.repeat(room) }));
    const { body } = await client().register(registerRequest(), TOKEN);
    expect(body.providerId).toBe(PROVIDER_ID);
  });

  it('refuses a certificate from an unknown CA before sending anything', async () => {
    play(registered());
    const error = await caught(client({}).register(registerRequest(), TOKEN));
    expect(error).toBeInstanceOf(ManagerError);
    expect(error).toMatchObject({ kind: 'tls', retryable: false });
    expect((error as ManagerError).code).toMatch(
      /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/,
    );
    expect((error as Error).message).toMatch(/MANAGER_CA_FILE/);
    expect(seen).toHaveLength(0);
  });

  it('does not retry a certificate failure during registration', async () => {
    play(registered());
    const retries: ManagerError[] = [];
    const error = await caught(
      register(
        client({}),
        new StateStore(tempDir('agent-state-')),
        registerRequest(),
        TOKEN,
        endpoints.base,
        log,
        new AbortController().signal,
        (e) => retries.push(e),
        new Backoff(1, 5),
      ),
    );
    expect(error).toMatchObject({ kind: 'tls' });
    expect(retries).toEqual([]);
    expect(seen).toHaveLength(0);
  });

  it('trusts the private CA given as caFile', async () => {
    play(registered());
    const { body, date } = await client({ caFile: tls.caFile }).register(registerRequest(), TOKEN);
    expect(body).toMatchObject({ providerId: PROVIDER_ID, credential: CREDENTIAL });
    expect(date).toBeInstanceOf(Date);
    expect(seen).toHaveLength(1);
  });

  it('reports a refused connection as a retryable network failure', async () => {
    const probe = createTcpServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const closed = parseManagerUrl(`https://127.0.0.1:${port}`, false);
    if (typeof closed === 'string') throw new Error(closed);
    const unreachable = new ManagerClient(closed, { caFile: tls.caFile });
    onTestFinished(() => unreachable.close());
    const error = await caught(unreachable.register(registerRequest(), TOKEN));
    expect(error).toMatchObject({ kind: 'network', code: 'ECONNREFUSED', retryable: true });
  });

  it('gives up on a manager that never answers, as a retryable timeout', async () => {
    play({ hang: true });
    const error = await caught(client({ caFile: tls.caFile, timeoutMs: 300 }).register(registerRequest(), TOKEN));
    expect(error).toMatchObject({ kind: 'timeout', retryable: true });
    expect(seen).toHaveLength(1);
  });
});

describe('heartbeats against the scripted manager', () => {
  function heartbeatSetup() {
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
    const run = () =>
      runHeartbeats(
        client(),
        model,
        () => ({ providerId: PROVIDER_ID, credential: CREDENTIAL }),
        () => ({
          state: 'contributing',
          rayNode: 'joined',
          cpuPercent: 12.5,
          memoryBytes: 123_456_789,
          memoryPercent: 2.9,
          activeTasks: 3,
          recentErrors: ['raylet: something went wrong'],
        }),
        BOOT_ID,
        log,
        controller.signal,
        new Backoff(1, 5),
      );
    return { model, controller, run };
  }

  function expectHeartbeatRequests(): void {
    for (const request of seen) {
      expect(request.method).toBe('POST');
      expect(request.url).toBe('/api/heartbeat');
      expect(request.headers.authorization).toBe(`Bearer ${CREDENTIAL}`);
      const parsed = HeartbeatRequest.safeParse(JSON.parse(request.body));
      expect(parsed.error?.issues ?? []).toEqual([]);
      expect(parsed.data?.providerId).toBe(PROVIDER_ID);
      expect(parsed.data?.bootId).toBe(BOOT_ID);
    }
  }

  it('records a healthy heartbeat, then stops as revoked on 401', async () => {
    const { model, run } = heartbeatSetup();
    model.heartbeat.intervalSeconds = 7;
    const skewed = new Date(Date.now() + 30_000);
    let seenBySecond: { state: string; intervalSeconds: number; skew: number | null; success: Date | null } | undefined;
    play(beatAccepted(1, skewed), () => {
      seenBySecond = {
        state: model.heartbeat.state,
        intervalSeconds: model.heartbeat.intervalSeconds,
        skew: model.heartbeat.serverClockSkewSeconds,
        success: model.heartbeat.lastSuccessAt,
      };
      return errorBody(401, 'invalid_credential', 'this provider credential is not valid');
    });
    expect((await run()).kind).toBe('revoked');
    expect(seen).toHaveLength(2);
    expectHeartbeatRequests();
    expect(seenBySecond?.state).toBe('healthy');
    expect(seenBySecond?.intervalSeconds).toBe(1); // the manager's interval wins
    expect(seenBySecond?.success).toBeInstanceOf(Date);
    expect(seenBySecond?.skew).toBeGreaterThan(25);
    expect(seenBySecond?.skew).toBeLessThan(35);
    expect(model.heartbeat.state).toBe('stopped');
  });

  it('honours 429 Retry-After: rate_limited, and the next request not before 2 s later', async () => {
    const { model, run } = heartbeatSetup();
    let stateAtRetry: string | undefined;
    let failuresAtRetry: number | undefined;
    play(errorBody(429, 'rate_limited', 'slow down', { 'retry-after': '2' }), () => {
      stateAtRetry = model.heartbeat.state;
      failuresAtRetry = model.heartbeat.consecutiveFailures;
      return errorBody(401, 'invalid_credential', 'this provider credential is not valid');
    });
    expect((await run()).kind).toBe('revoked');
    expect(seen).toHaveLength(2);
    expectHeartbeatRequests();
    expect(stateAtRetry).toBe('rate_limited');
    expect(failuresAtRetry).toBe(1);
    // A correctness bound (the loop must wait out Retry-After), not a speed assertion.
    expect((seen[1]?.at ?? 0) - (seen[0]?.at ?? 0)).toBeGreaterThanOrEqual(1_900);
  });

  it('caps a huge Retry-After at 300 s: rate_limited in the status, and no request meanwhile', async () => {
    const { model, controller, run } = heartbeatSetup();
    play(errorBody(429, 'rate_limited', 'slow down', { 'retry-after': '86400' }), beatAccepted(1));
    const outcome = run();
    const limited = await waitFor(() => model.heartbeat.state === 'rate_limited');
    expect(limited).toBe(true);
    const status = model.snapshot();
    expect(status.heartbeat.state).toBe('rate_limited');
    expect(status.heartbeat.consecutiveFailures).toBe(1);
    expect(status.lastError?.code).toBe('heartbeat_failing');
    const waitSeconds = (Date.parse(status.heartbeat.nextAttemptAt ?? '') - Date.now()) / 1000;
    expect(waitSeconds).toBeGreaterThan(295); // the day asked for is capped at 300 s, not ignored
    expect(waitSeconds).toBeLessThanOrEqual(300);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(seen).toHaveLength(1);
    controller.abort(); // stopping must not wait out the 300 s
    expect((await outcome).kind).toBe('stopped');
    expect(seen).toHaveLength(1);
  });

  it('keeps going through failures and recovers', async () => {
    const { model, run } = heartbeatSetup();
    let atRecovery: { state: string; failures: number; error: string | undefined } | undefined;
    play(html(502), errorBody(500, 'internal', 'boom'), beatAccepted(1), () => {
      atRecovery = {
        state: model.heartbeat.state,
        failures: model.heartbeat.consecutiveFailures,
        error: model.error?.code,
      };
      return errorBody(403, 'forbidden', 'no');
    });
    expect((await run()).kind).toBe('revoked');
    expect(seen).toHaveLength(4);
    expectHeartbeatRequests();
    expect(atRecovery).toEqual({ state: 'healthy', failures: 0, error: undefined });
  });

  it('stops with unknown_provider on 404 unknown_provider', async () => {
    const { run } = heartbeatSetup();
    play(errorBody(404, 'unknown_provider', 'this manager does not know provider alices-desktop-7f3a'));
    expect((await run()).kind).toBe('unknown_provider');
    expect(seen).toHaveLength(1);
    expectHeartbeatRequests();
  });

  it('stops with identity_in_use on 409 identity_in_use, passing on when the other boot lease runs out', async () => {
    const { run, model } = heartbeatSetup();
    play(
      errorBody(409, 'identity_in_use', 'another agent is already running as this provider', { 'retry-after': '7' }),
    );
    expect(await run()).toEqual({ kind: 'identity_in_use', retryAfterMs: 7_000 });
    expect(seen).toHaveLength(1);
    expect(model.heartbeat.state).toBe('failing');
    expectHeartbeatRequests();
  });

  it('stops when its signal aborts', async () => {
    const { controller, run } = heartbeatSetup();
    play(() => {
      setImmediate(() => controller.abort());
      return errorBody(503, 'unavailable', 'busy');
    });
    expect((await run()).kind).toBe('stopped');
    expect(seen).toHaveLength(1);
  });
});
