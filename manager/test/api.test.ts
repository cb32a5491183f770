import {
  ErrorBody,
  HeartbeatResponse,
  ProviderId,
  ProviderList,
  ProviderSummary,
  RegisterResponse,
} from '@ray-agent/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  ENROLLMENT_TOKEN,
  heartbeatBody,
  httpsCall,
  registerBody,
  startTestServer,
  type TestServer,
} from './helpers.js';

let server: TestServer;

beforeEach(async () => {
  server = await startTestServer();
});

afterEach(async () => {
  const problems = [...server.openApiProblems];
  await server.close();
  expect(problems, 'responses must match manager/openapi.json').toEqual([]);
});

async function register(body = registerBody()) {
  const res = await server.call('POST', '/api/register', { token: ENROLLMENT_TOKEN, body, checkRequest: true });
  expect(res.status, res.text).toBe(200);
  return RegisterResponse.parse(res.body);
}

function errorCode(body: unknown): string {
  return ErrorBody.parse(body).error.code;
}

describe('TLS and basics', () => {
  it('serves /healthz over TLS verified against the test CA', async () => {
    const res = await server.call('GET', '/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true });
  });

  it('refuses a client that does not trust the CA', async () => {
    await expect(httpsCall(`${server.url}/healthz`, { ca: Buffer.from('') })).rejects.toThrow();
  });

  it('answers unknown routes with a JSON ErrorBody not_found', async () => {
    const res = await server.call('GET', '/no-such-route?x=1');
    expect(res.status).toBe(404);
    expect(errorCode(res.body)).toBe('not_found');
  });

  it('rejects bodies over 64 KiB with 413 payload_too_large', async () => {
    const res = await server.call('POST', '/api/register', {
      token: ENROLLMENT_TOKEN,
      rawBody: JSON.stringify({ ...registerBody(), hostname: 'x'.repeat(70 * 1024) }),
    });
    expect(res.status).toBe(413);
    expect(errorCode(res.body)).toBe('payload_too_large');
  });

  it('rejects malformed JSON and non-JSON bodies with an ErrorBody', async () => {
    const bad = await server.call('POST', '/api/register', { token: ENROLLMENT_TOKEN, rawBody: '{"installId":' });
    expect(bad.status).toBe(400);
    expect(errorCode(bad.body)).toBe('invalid_request');
    const form = await server.call('POST', '/api/register', {
      token: ENROLLMENT_TOKEN,
      rawBody: 'a=1',
      contentType: 'application/x-www-form-urlencoded',
    });
    expect(form.status).toBe(415);
    expect(errorCode(form.body)).toBe('unsupported_media_type');
  });
});

describe('POST /api/register', () => {
  it('registers a provider and returns a providerId, a fresh credential and the interval', async () => {
    const before = Date.now();
    const res = await register();
    expect(ProviderId.safeParse(res.providerId).success).toBe(true);
    expect(res.providerId).toMatch(/^prv-[a-z2-7]{12}$/);
    expect(res.credential).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(Buffer.from(res.credential, 'base64url').length).toBeGreaterThanOrEqual(32);
    expect(res.heartbeatIntervalSeconds).toBe(10);
    expect(Date.parse(res.serverTime)).toBeGreaterThanOrEqual(before - 1000);

    const list = ProviderList.parse((await server.call('GET', '/api/providers', { token: ADMIN_TOKEN })).body);
    expect(list.providers).toHaveLength(1);
    expect(list.providers[0]).toMatchObject({
      providerId: res.providerId,
      hostname: 'worker-1.example',
      cpuCores: 8,
      registrations: 1,
      heartbeats: 0,
      lastHeartbeatAt: null,
      lastState: null,
      health: 'never',
    });
  });

  it('is idempotent per installId: same providerId, registrations=2, one row, old credential revoked', async () => {
    const first = await register();
    const second = await register(registerBody({ hostname: 'worker-1-renamed' }));
    expect(second.providerId).toBe(first.providerId);
    expect(second.credential).not.toBe(first.credential);

    const rows = server.store.db.prepare('SELECT COUNT(*) AS n FROM providers').get() as { n: number };
    expect(rows.n).toBe(1);

    const summary = ProviderSummary.parse(
      (await server.call('GET', `/api/providers/${first.providerId}`, { token: ADMIN_TOKEN })).body,
    );
    expect(summary.registrations).toBe(2);
    expect(summary.hostname).toBe('worker-1-renamed');

    const old = await server.call('POST', '/api/heartbeat', {
      token: first.credential,
      body: heartbeatBody(first.providerId),
    });
    expect(old.status).toBe(401);
    expect(errorCode(old.body)).toBe('credential_rejected');
    const current = await server.call('POST', '/api/heartbeat', {
      token: second.credential,
      body: heartbeatBody(first.providerId),
    });
    expect(current.status).toBe(200);
  });

  it('gives different installIds different providers', async () => {
    const a = await register();
    const b = await register(registerBody({ installId: '0b7f8a52-3c1d-4e5f-8a9b-0c1d2e3f4a5b' }));
    expect(a.providerId).not.toBe(b.providerId);
  });

  it('rejects a missing, wrong, revoked or expired enrollment token with 401, and never logs it', async () => {
    const wrongToken = 'wrong-enrollment-token-SECRET-9f8e7d6c5b4a';
    const missing = await server.call('POST', '/api/register', { body: registerBody() });
    expect(missing.status).toBe(401);
    expect(errorCode(missing.body)).toBe('enrollment_token_rejected');

    const wrong = await server.call('POST', '/api/register', { token: wrongToken, body: registerBody() });
    expect(wrong.status).toBe(401);
    expect(errorCode(wrong.body)).toBe('enrollment_token_rejected');

    const revoked = server.store.createEnrollmentToken({ label: 'to revoke' });
    expect((await server.call('POST', '/api/register', { token: revoked.token, body: registerBody() })).status).toBe(
      200,
    );
    server.store.revokeEnrollmentToken(revoked.id);
    const afterRevoke = await server.call('POST', '/api/register', { token: revoked.token, body: registerBody() });
    expect(afterRevoke.status).toBe(401);

    // Another machine (installId): the first one's is registered with the revoked token now.
    const second = registerBody({ installId: '0b7f8a52-3c1d-4e5f-8a9b-0c1d2e3f4a5b' });
    const expiring = server.store.createEnrollmentToken({ expiresInHours: 1, now: server.clock.now });
    expect((await server.call('POST', '/api/register', { token: expiring.token, body: second })).status).toBe(200);
    server.clock.now = new Date(server.clock.now.getTime() + 2 * 3_600_000);
    const expired = await server.call('POST', '/api/register', { token: expiring.token, body: second });
    expect(expired.status).toBe(401);
    expect(errorCode(expired.body)).toBe('enrollment_token_rejected');

    // Secrets never reach the log; the requests themselves did.
    const logs = server.logs.text;
    expect(logs).toContain('"status":401');
    expect(logs).toContain('/api/register');
    for (const secret of [wrongToken, ENROLLMENT_TOKEN, revoked.token, expiring.token]) {
      expect(logs).not.toContain(secret);
    }
    expect(logs.toLowerCase()).not.toContain('bearer');
  });

  it('never logs credentials or admin tokens on the happy path either', async () => {
    const reg = await register();
    await server.call('POST', '/api/heartbeat', { token: reg.credential, body: heartbeatBody(reg.providerId) });
    await server.call('GET', '/api/providers', { token: ADMIN_TOKEN });
    const logs = server.logs.text;
    expect(logs).toContain(reg.providerId);
    for (const secret of [reg.credential, ADMIN_TOKEN, ENROLLMENT_TOKEN]) expect(logs).not.toContain(secret);
    for (const line of server.logs.lines) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.msg === 'request') {
        expect(Object.keys(entry)).toEqual(expect.arrayContaining(['method', 'url', 'status', 'latencyMs']));
      }
    }
  });

  it('rejects an invalid body with 400 naming the field', async () => {
    const res = await server.call('POST', '/api/register', {
      token: ENROLLMENT_TOKEN,
      body: registerBody({ cpuCores: 0 }),
    });
    expect(res.status).toBe(400);
    const body = ErrorBody.parse(res.body);
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.message).toMatch(/^cpuCores: Too small/);

    const nested = await server.call('POST', '/api/register', {
      token: ENROLLMENT_TOKEN,
      body: registerBody({ limits: { cpus: 2 } }),
    });
    expect(ErrorBody.parse(nested.body).error.message).toContain('limits.memoryBytes');

    const notUuid = await server.call('POST', '/api/register', {
      token: ENROLLMENT_TOKEN,
      body: registerBody({ installId: 'not-a-uuid' }),
    });
    expect(ErrorBody.parse(notUuid.body).error.message).toContain('installId');

    const empty = await server.call('POST', '/api/register', { token: ENROLLMENT_TOKEN });
    expect(empty.status).toBe(400);
    expect(ErrorBody.parse(empty.body).error.message).toContain('body');
  });

  it('checks the enrollment token before the body', async () => {
    const res = await server.call('POST', '/api/register', { token: 'nope-nope-nope-nope', body: { junk: true } });
    expect(res.status).toBe(401);
  });
});

describe('POST /api/heartbeat', () => {
  it('stores the heartbeat and the listing shows it as healthy', async () => {
    const reg = await register();
    const hb = heartbeatBody(reg.providerId, {
      activeTasks: 7,
      cpuPercent: 42.5,
      memoryBytes: 1234567,
      memoryPercent: 12,
      recentErrors: ['ray: worker died once'],
    });
    const res = await server.call('POST', '/api/heartbeat', { token: reg.credential, body: hb, checkRequest: true });
    expect(res.status, res.text).toBe(200);
    const body = HeartbeatResponse.parse(res.body);
    expect(body.ok).toBe(true);
    expect(body.heartbeatIntervalSeconds).toBe(10);

    await server.call('POST', '/api/heartbeat', {
      token: reg.credential,
      body: { ...hb, activeTasks: 8 },
    });

    const list = ProviderList.parse((await server.call('GET', '/api/providers', { token: ADMIN_TOKEN })).body);
    expect(list.providers[0]).toMatchObject({
      providerId: reg.providerId,
      heartbeats: 2,
      activeTasks: 8,
      cpuPercent: 42.5,
      memoryBytesUsed: 1234567,
      lastState: 'contributing',
      lastHeartbeatAt: server.clock.now.toISOString(),
      health: 'healthy',
    });
    const record = server.store.getProviderRecord(reg.providerId);
    expect(record).toMatchObject({
      lastRayNode: 'joined',
      lastMemoryPercent: 12,
      recentErrors: ['ray: worker died once'],
    });
  });

  it('derives late, offline and stopped from the injected clock', async () => {
    const reg = await register();
    await server.call('POST', '/api/heartbeat', { token: reg.credential, body: heartbeatBody(reg.providerId) });
    const health = async () =>
      ProviderSummary.parse((await server.call('GET', `/api/providers/${reg.providerId}`, { token: ADMIN_TOKEN })).body)
        .health;
    expect(await health()).toBe('healthy');
    const t0 = server.clock.now.getTime();
    server.clock.now = new Date(t0 + 31_000);
    expect(await health()).toBe('late');
    server.clock.now = new Date(t0 + 101_000);
    expect(await health()).toBe('offline');
    await server.call('POST', '/api/heartbeat', {
      token: reg.credential,
      body: heartbeatBody(reg.providerId, { state: 'stopped', rayNode: 'stopped', activeTasks: 0 }),
    });
    server.clock.now = new Date(t0 + 10_000_000);
    expect(await health()).toBe('stopped');
  });

  it('rejects a wrong credential with 401 credential_rejected', async () => {
    const reg = await register();
    const other = await register(registerBody({ installId: '0b7f8a52-3c1d-4e5f-8a9b-0c1d2e3f4a5b' }));
    const wrong = await server.call('POST', '/api/heartbeat', {
      token: other.credential,
      body: heartbeatBody(reg.providerId),
    });
    expect(wrong.status).toBe(401);
    expect(errorCode(wrong.body)).toBe('credential_rejected');
    const missing = await server.call('POST', '/api/heartbeat', { body: heartbeatBody(reg.providerId) });
    expect(missing.status).toBe(401);
    expect(errorCode(missing.body)).toBe('credential_rejected');
    const summary = ProviderSummary.parse(
      (await server.call('GET', `/api/providers/${reg.providerId}`, { token: ADMIN_TOKEN })).body,
    );
    expect(summary.heartbeats).toBe(0);
  });

  it('answers 404 unknown_provider for a provider that does not exist, whatever the credential', async () => {
    const reg = await register();
    const res = await server.call('POST', '/api/heartbeat', {
      token: reg.credential,
      body: heartbeatBody('prv-doesnotexist'),
    });
    expect(res.status).toBe(404);
    expect(errorCode(res.body)).toBe('unknown_provider');
  });

  it('rejects an invalid heartbeat with 400 naming the field', async () => {
    const reg = await register();
    const res = await server.call('POST', '/api/heartbeat', {
      token: reg.credential,
      body: heartbeatBody(reg.providerId, { cpuPercent: 150, recentErrors: ['a', 'b', 'c', 'd', 'e', 'f'] }),
    });
    expect(res.status).toBe(400);
    const message = ErrorBody.parse(res.body).error.message;
    expect(message).toContain('cpuPercent: Too big');
    expect(message).toContain('recentErrors');
  });
});

describe('GET /api/providers', () => {
  it('requires the admin token', async () => {
    await register();
    for (const token of [undefined, 'not-the-admin-token', ENROLLMENT_TOKEN]) {
      const list = await server.call('GET', '/api/providers', token === undefined ? {} : { token });
      expect(list.status).toBe(401);
      expect(errorCode(list.body)).toBe('admin_token_rejected');
    }
    const one = await server.call('GET', '/api/providers/prv-aaaaaaaaaaaa', { token: 'nope-nope' });
    expect(one.status).toBe(401);
  });

  it('answers 404 for an unknown provider id', async () => {
    const res = await server.call('GET', '/api/providers/prv-aaaaaaaaaaaa', { token: ADMIN_TOKEN });
    expect(res.status).toBe(404);
    expect(errorCode(res.body)).toBe('unknown_provider');
  });
});
