/**
 * Rate limits on register and heartbeat, per client address and per provider, against the real server over real
 * TLS. Another client is another loopback source address (127.0.0.2). The limiter counts on the process clock, so
 * tests that replay minutes of traffic fake `Date` (only `Date`: sockets and timers stay real) and move the
 * server's injected clock with it.
 */
import { ErrorBody, type RegisterResponse } from '@ray-agent/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultRateLimits, type RateLimits } from '../src/rate-limits.js';
import {
  type HttpResult,
  heartbeatBody,
  NO_RATE_LIMITS,
  postHeartbeat,
  postRegister,
  registerBody,
  registered,
  startTestServer,
  type TestServer,
} from './helpers.js';

const OTHER_CLIENT = '127.0.0.2';
const INSTALL_2 = '0b7f8a52-3c1d-4e5f-8a9b-0c1d2e3f4a5b';

let server: TestServer | undefined;

afterEach(async () => {
  vi.useRealTimers();
  if (!server) return;
  const problems = [...server.openApiProblems];
  await server.close();
  server = undefined;
  expect(problems, 'responses must match manager/openapi.json').toEqual([]);
});

async function start(limits: Partial<RateLimits> | undefined, heartbeatIntervalSeconds = 10): Promise<TestServer> {
  server = await startTestServer({
    heartbeatIntervalSeconds,
    ...(limits === undefined ? {} : { rateLimits: { ...NO_RATE_LIMITS, ...limits } }),
  });
  return server;
}

/** A 429 in our ErrorBody shape with a Retry-After of whole seconds inside the window. */
function expectLimited(res: HttpResult, windowSeconds: number, what: RegExp): number {
  expect(res.status, res.text).toBe(429);
  const { code, message } = ErrorBody.parse(res.body).error;
  expect(code).toBe('rate_limited');
  expect(message).toMatch(what);
  const retryAfter = String(res.headers['retry-after']);
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  expect(Number(retryAfter)).toBeLessThanOrEqual(windowSeconds);
  return Number(retryAfter);
}

describe('per client address', () => {
  it('answers a burst of registrations beyond the limit with 429 and Retry-After; another address is not affected', async () => {
    const s = await start({ registerPerClient: { max: 5, windowSeconds: 60 } });
    // Requests count before anything is read: a wrong token uses the budget too (token guessing is slowed).
    for (let i = 0; i < 4; i++)
      expect((await s.call('POST', '/api/register', { token: 'wrong-token-0123456789', body: {} })).status).toBe(401);
    expect((await postRegister(s)).status).toBe(200);
    expectLimited(await postRegister(s), 60, /^more than 5 registrations a minute from this address; retry in \d+ s$/);
    expect((await postRegister(s, { installId: INSTALL_2 }, OTHER_CLIENT)).status).toBe(200);
  });

  it('answers a burst of heartbeats beyond the limit with 429 and Retry-After; another address is not affected', async () => {
    const s = await start({ heartbeatPerClient: { max: 5, windowSeconds: 60 } });
    const reg = registered(await postRegister(s));
    for (let i = 0; i < 5; i++) expect((await postHeartbeat(s, reg)).status).toBe(200);
    expectLimited(
      await postHeartbeat(s, reg),
      60,
      /^more than 5 heartbeats a minute from this address; retry in \d+ s$/,
    );
    expect((await postHeartbeat(s, reg, {}, OTHER_CLIENT)).status).toBe(200);
  });
});

describe('per provider', () => {
  it('answers a burst of one provider beyond the limit with 429; Retry-After is the wait, other providers go on', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date() });
    const s = await start({ heartbeatPerProvider: { max: 5, windowSeconds: 60 } });
    s.clock.now = new Date();
    const a = registered(await postRegister(s));
    const b = registered(await postRegister(s, { installId: INSTALL_2 }));
    // Heartbeats that do not prove the credential do not use the provider's budget.
    for (let i = 0; i < 8; i++) {
      const stranger = await s.call('POST', '/api/heartbeat', {
        token: 'not-the-credential-0123456789abcdef',
        body: heartbeatBody(a.providerId),
      });
      expect(stranger.status).toBe(401);
    }
    for (let i = 0; i < 5; i++) expect((await postHeartbeat(s, a)).status).toBe(200);
    vi.setSystemTime(Date.now() + 20_000);
    const retryAfter = expectLimited(
      await postHeartbeat(s, a),
      60,
      /^more than 5 heartbeats a minute of this provider; retry in 40 s$/,
    );
    expect(retryAfter).toBe(40);
    expect((await postHeartbeat(s, b)).status).toBe(200);
    vi.setSystemTime(Date.now() + (retryAfter - 1) * 1000);
    expect((await postHeartbeat(s, a)).status).toBe(429);
    vi.setSystemTime(Date.now() + 1000);
    expect((await postHeartbeat(s, a)).status).toBe(200);
  });

  it('limits registrations of one installId, counting only those with a valid token', async () => {
    const s = await start({ registerPerInstall: { max: 3, windowSeconds: 3600 } });
    for (let i = 0; i < 5; i++) {
      const wrong = await s.call('POST', '/api/register', { token: 'wrong-token-0123456789', body: registerBody() });
      expect(wrong.status).toBe(401);
    }
    for (let i = 0; i < 3; i++) registered(await postRegister(s));
    expectLimited(await postRegister(s), 3600, /^more than 3 registrations an hour of this installId; retry in \d+ s$/);
    registered(await postRegister(s, { installId: INSTALL_2 }));
  });
});

describe('the default limits', () => {
  it('stop a hot loop of heartbeats and of registrations', async () => {
    const s = await start(undefined, 10);
    const defaults = defaultRateLimits(10);
    const reg = registered(await postRegister(s));
    const answers: number[] = [];
    for (let i = 0; i < 100; i++) answers.push((await postHeartbeat(s, reg)).status);
    expect(answers.filter((status) => status === 200)).toHaveLength(defaults.heartbeatPerProvider.max);
    expect(answers.filter((status) => status === 429)).toHaveLength(100 - defaults.heartbeatPerProvider.max);

    const registrations: number[] = [];
    for (let i = 0; i < 15; i++) registrations.push((await postRegister(s, { installId: INSTALL_2 })).status);
    expect(registrations.filter((status) => status === 200)).toHaveLength(defaults.registerPerInstall.max);
    expect(registrations.at(-1)).toBe(429);
  });

  it.each([2, 10])(
    'never refuse correct agents at a %i s interval: two providers, a restart, a copy and rotations, for 6 minutes',
    async (interval) => {
      vi.useFakeTimers({ toFake: ['Date'], now: new Date() });
      const s = await start(undefined, interval);
      const t0 = Date.now();
      const end = t0 + 6 * 60_000;
      const statuses = new Map<number, number>();
      const at = (t: number) => {
        vi.setSystemTime(t);
        s.clock.now = new Date(t);
      };
      const count = (res: HttpResult) => {
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        return res;
      };

      at(t0);
      const p1 = registered(count(await postRegister(s)));
      const p2 = { ...registered(count(await postRegister(s, { installId: INSTALL_2 }))) };
      const boots = {
        original: 'a3c5e7f9-1b2d-4f6a-8c0e-2d4f6a8c0e1b',
        restarted: 'b4d6f8a0-2c3e-4a5b-9d1f-3e5a7b9c1d2e',
        copy: 'c5e7a9b1-3d4f-4b6c-8e2a-4f6b8c0d2e3f',
        other: 'd6f8b0c2-4e5a-4c7d-9f3b-5a7c9d1e3f4a',
      };
      // Each actor: when it next sends, and what it does then (returns its next time, or Infinity when done).
      const actors: Array<{ next: number; act: (now: number) => Promise<number> }> = [];
      const jitter = (k: number) => (k * 137) % 900;
      let k = 0;
      const cadence =
        (reg: () => RegisterResponse, bootId: string, until = end) =>
        async (now: number) => {
          if (now >= until) return Number.POSITIVE_INFINITY;
          const res = count(await postHeartbeat(s, reg(), { bootId }));
          k += 1;
          if (res.status === 409) return now + Number(res.headers['retry-after']) * 1000;
          return now + interval * 1000 + jitter(k);
        };
      const killedAt = t0 + 150_000;
      actors.push({ next: t0, act: cadence(() => p1, boots.original, killedAt) });
      // Restarted one second after the kill, with a new boot ID.
      actors.push({ next: killedAt + 1_000, act: cadence(() => p1, boots.restarted) });
      // A copy of p1's state volume, started by mistake, retrying as Retry-After says.
      actors.push({ next: t0 + 1_500, act: cadence(() => p1, boots.copy) });
      actors.push({ next: t0 + 300, act: cadence(() => p2, boots.other) });
      // p2 registers again three times (rotating its credential), once losing the answer and retrying.
      for (const minute of [1, 3, 5]) {
        actors.push({
          next: t0 + minute * 60_000,
          act: async () => {
            const body = () => ({ installId: INSTALL_2, currentCredential: p2.credential });
            const answer = registered(count(await postRegister(s, body())));
            // The answer was lost: the retry carries the same token and the credential the agent still holds.
            p2.credential =
              minute === 3 ? registered(count(await postRegister(s, body()))).credential : answer.credential;
            return Number.POSITIVE_INFINITY;
          },
        });
      }
      for (;;) {
        const actor = actors.reduce((soonest, a) => (a.next < soonest.next ? a : soonest));
        if (actor.next >= end) break;
        at(actor.next);
        actor.next = await actor.act(actor.next);
      }

      expect(statuses.get(429) ?? 0, JSON.stringify([...statuses])).toBe(0);
      expect([...statuses.keys()].sort()).toEqual([200, 409]);
      // Both providers kept contributing: well over one accepted heartbeat per interval and a half, each.
      expect(statuses.get(200)).toBeGreaterThan((2 * 6 * 60) / (1.5 * interval));
    },
    120_000,
  );
});
