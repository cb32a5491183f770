/**
 * The identity lease against the real server over real TLS, with the server's clock injected: a restarted agent
 * (a new boot ID after `docker kill`, an OOM kill, a crash) comes back by itself once the dead boot's lease runs
 * out, while a copy of the state volume running next to a live original is refused every time.
 */
import {
  ErrorBody,
  IDENTITY_LEASE_INTERVALS,
  identityLeaseMs,
  ProviderSummary,
  type RegisterResponse,
} from '@ray-agent/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decideIdentity } from '../src/identity-lease.js';
import {
  ADMIN_TOKEN,
  BOOT_ID,
  type HttpResult,
  NO_RATE_LIMITS,
  postHeartbeat,
  postRegister,
  registered,
  startTestServer,
  type TestServer,
} from './helpers.js';

const INTERVAL = 10;
const LEASE_MS = identityLeaseMs(INTERVAL);
const ORIGINAL = BOOT_ID;
const RESTARTED = '5e2b8c41-7d3a-4f9e-8b6c-0a1d2e3f4b5c';

let server: TestServer;
let reg: RegisterResponse;

function beat(bootId: string, overrides: Record<string, unknown> = {}): Promise<HttpResult> {
  return postHeartbeat(server, reg, { bootId, ...overrides });
}

function advance(ms: number): void {
  server.clock.now = new Date(server.clock.now.getTime() + ms);
}

function refusal(res: HttpResult): { code: string; retryAfter: number } {
  expect(res.status, res.text).toBe(409);
  return { code: ErrorBody.parse(res.body).error.code, retryAfter: Number(res.headers['retry-after']) };
}

async function summary(): Promise<ProviderSummary> {
  const res = await server.call('GET', `/api/providers/${reg.providerId}`, { token: ADMIN_TOKEN });
  return ProviderSummary.parse(res.body);
}

describe('the identity lease', () => {
  beforeEach(async () => {
    server = await startTestServer({ heartbeatIntervalSeconds: INTERVAL, rateLimits: NO_RATE_LIMITS });
    reg = registered(await postRegister(server));
  });

  afterEach(async () => {
    const problems = [...server.openApiProblems];
    await server.close();
    expect(problems, 'responses must match manager/openapi.json').toEqual([]);
  });

  it('refuses a new boot inside the lease with Retry-After until it runs out, then lets it take over', async () => {
    expect((await beat(ORIGINAL)).status).toBe(200);
    // The container was killed 1 s after that heartbeat and restarted at once: 3 s after it, a new boot.
    advance(3_000);
    expect(refusal(await beat(RESTARTED))).toEqual({ code: 'identity_in_use', retryAfter: 17 });
    advance(16_500);
    expect(refusal(await beat(RESTARTED))).toEqual({ code: 'identity_in_use', retryAfter: 1 });
    // Exactly a lease after the dead boot's last heartbeat: the newest boot wins.
    advance(500);
    const takeover = await beat(RESTARTED);
    expect(takeover.status, takeover.text).toBe(200);
    expect(await summary()).toMatchObject({ heartbeats: 2, health: 'healthy' });
    expect(server.logs.text).toContain('"msg":"identity taken over by a new boot"');
    expect(server.logs.text).toContain(`"previousBootId":"${ORIGINAL}"`);

    // The superseded boot is now the other one: refused while the new holder keeps heartbeating.
    advance(1_000);
    expect(refusal(await beat(ORIGINAL))).toEqual({ code: 'identity_in_use', retryAfter: LEASE_MS / 1000 - 1 });
    advance(INTERVAL * 1000 - 1_000);
    expect((await beat(RESTARTED)).status).toBe(200);
    advance(INTERVAL * 1000);
    expect((await beat(RESTARTED)).status).toBe(200);
    expect(refusal(await beat(ORIGINAL)).code).toBe('identity_in_use');
  });

  it('hands the identity over at once when the holder said stopped', async () => {
    expect((await beat(ORIGINAL)).status).toBe(200);
    expect((await beat(ORIGINAL, { state: 'stopped', rayNode: 'stopped', activeTasks: 0 })).status).toBe(200);
    const restarted = await beat(RESTARTED);
    expect(restarted.status, restarted.text).toBe(200);
    expect(refusal(await beat(ORIGINAL))).toEqual({ code: 'identity_in_use', retryAfter: LEASE_MS / 1000 });
  });

  it('lets the first boot of a provider in without waiting', async () => {
    const first = await beat(RESTARTED);
    expect(first.status, first.text).toBe(200);
  });

  it('refuses a copy heartbeating alongside a live original every time, however it follows Retry-After', async () => {
    // Two agents on one state volume for 30 intervals. The original heartbeats an interval after each answer plus
    // up to 0.9 s of latency; the copy retries when Retry-After says, which is when the lease would run out if the
    // original had died.
    const t0 = server.clock.now.getTime();
    const end = t0 + 30 * INTERVAL * 1000;
    let originalAt = t0;
    let copyAt = t0 + 1_000;
    let k = 0;
    const copyAnswers: number[] = [];
    while (Math.min(originalAt, copyAt) < end) {
      if (originalAt <= copyAt) {
        server.clock.now = new Date(originalAt);
        const res = await beat(ORIGINAL);
        expect(res.status, res.text).toBe(200);
        k += 1;
        originalAt += INTERVAL * 1000 + ((k * 137) % 900);
      } else {
        server.clock.now = new Date(copyAt);
        const { code, retryAfter } = refusal(await beat(RESTARTED));
        expect(code).toBe('identity_in_use');
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(LEASE_MS / 1000);
        copyAnswers.push(retryAfter);
        copyAt += retryAfter * 1000;
      }
    }
    expect(copyAnswers.length).toBeGreaterThanOrEqual(15);
    expect(k).toBeGreaterThanOrEqual(28);
    expect(await summary()).toMatchObject({ heartbeats: k });
  });
});

describe('decideIdentity', () => {
  it('uses a lease of two heartbeat intervals, defined once in the protocol', () => {
    expect(IDENTITY_LEASE_INTERVALS).toBe(2);
    expect(identityLeaseMs(10)).toBe(20_000);
    expect(identityLeaseMs(2)).toBe(4_000);
  });

  const at = new Date('2026-03-01T12:00:00.000Z');
  const holder = { bootId: ORIGINAL, lastState: 'contributing', lastHeartbeatAt: at.toISOString() };
  const later = (ms: number) => new Date(at.getTime() + ms);

  it('accepts the holder itself, a first boot, a stopped holder and an expired lease', () => {
    expect(decideIdentity(holder, ORIGINAL, INTERVAL, later(LEASE_MS * 5))).toMatchObject({ reason: 'same_boot' });
    expect(decideIdentity({ bootId: null, lastState: null, lastHeartbeatAt: null }, RESTARTED, INTERVAL, at)).toEqual({
      kind: 'accepted',
      reason: 'first_boot',
      previousBootId: null,
    });
    expect(decideIdentity({ ...holder, lastState: 'stopped' }, RESTARTED, INTERVAL, at)).toMatchObject({
      kind: 'accepted',
      reason: 'holder_stopped',
    });
    expect(decideIdentity(holder, RESTARTED, INTERVAL, later(LEASE_MS))).toEqual({
      kind: 'accepted',
      reason: 'lease_expired',
      previousBootId: ORIGINAL,
    });
  });

  it('answers whole seconds, at least 1 and never more than a lease', () => {
    expect(decideIdentity(holder, RESTARTED, INTERVAL, later(LEASE_MS - 1))).toEqual({
      kind: 'held',
      holderBootId: ORIGINAL,
      retryAfterSeconds: 1,
    });
    expect(decideIdentity(holder, RESTARTED, INTERVAL, later(2_500))).toMatchObject({ retryAfterSeconds: 18 });
    // The manager's clock stepped back an hour: still at most one lease.
    expect(decideIdentity(holder, RESTARTED, INTERVAL, later(-3_600_000))).toMatchObject({
      retryAfterSeconds: LEASE_MS / 1000,
    });
  });
});
