/**
 * POST /api/deregister ("Leave this cluster") against the real server over real TLS: the provider's own credential
 * makes it leave for good; afterwards that credential gets 401, the gateway drops the peer, the listing says `left`.
 */

import { join } from 'node:path';
import {
  DEREGISTER_PATH,
  DeregisterResponse,
  ErrorBody,
  GatewaySyncResponse,
  ProviderSummary,
  type RegisterResponse,
} from '@ray-agent/protocol';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, migrate, SCHEMA_VERSION } from '../src/migrations.js';
import { Store } from '../src/store.js';
import { hashSecret } from '../src/tokens.js';
import {
  ADMIN_TOKEN,
  ENROLLMENT_TOKEN,
  GATEWAY_TOKEN,
  NO_RATE_LIMITS,
  postHeartbeat,
  postRegister,
  registerBody,
  registered,
  startTestServer,
  type TestServer,
  tempDir,
  wireguardKey,
} from './helpers.js';

const INSTALL_A = '7c9e6679-7425-40de-944b-e07fc1f90ae7';
const INSTALL_B = '0b7f8a52-3c1d-4e5f-8a9b-0c1d2e3f4a5b';

let server: TestServer | undefined;

afterEach(async () => {
  if (!server) return;
  const problems = [...server.openApiProblems];
  await server.close();
  server = undefined;
  expect(problems, 'responses must match manager/openapi.json').toEqual([]);
});

async function start(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  server = await startTestServer(options);
  return server;
}

const deregister = (s: TestServer, credential?: string, localAddress?: string) =>
  s.call('POST', DEREGISTER_PATH, {
    ...(credential === undefined ? {} : { token: credential }),
    ...(localAddress === undefined ? {} : { localAddress }),
  });

async function summary(s: TestServer, providerId: string): Promise<ProviderSummary> {
  const res = await s.call('GET', `/api/providers/${providerId}`, { token: ADMIN_TOKEN });
  expect(res.status, res.text).toBe(200);
  return ProviderSummary.parse(res.body);
}

function error(body: unknown) {
  return ErrorBody.parse(body).error;
}

describe('POST /api/deregister', () => {
  it('makes the provider leave: 200 once, then its credential gets 401 everywhere and the listing says left', async () => {
    const s = await start();
    const reg = registered(await postRegister(s));
    expect((await postHeartbeat(s, reg)).status).toBe(200);
    expect((await summary(s, reg.providerId)).health).toBe('healthy');

    const res = await deregister(s, reg.credential);
    expect(res.status, res.text).toBe(200);
    const body = DeregisterResponse.parse(res.body);
    expect(body).toEqual({ ok: true, providerId: reg.providerId, leftAt: s.clock.now.toISOString() });

    const listed = await summary(s, reg.providerId);
    expect(listed).toMatchObject({ health: 'left', leftAt: body.leftAt, revokedAt: null });
    const all = await s.call('GET', '/api/providers', { token: ADMIN_TOKEN });
    expect(JSON.stringify(all.body)).toContain('"health":"left"');

    const hb = await postHeartbeat(s, reg);
    expect(hb.status, hb.text).toBe(401);
    expect(error(hb.body)).toEqual({
      code: 'credential_rejected',
      message: `provider ${reg.providerId} left the cluster at ${body.leftAt} (it deregistered itself); to contribute again, join with an enrollment token`,
    });

    // A retry after a lost answer: already gone, and the first leftAt stays.
    const again = await deregister(s, reg.credential);
    expect(again.status).toBe(401);
    expect(error(again.body).message).toContain(`left the cluster already at ${body.leftAt}`);
    expect((await summary(s, reg.providerId)).leftAt).toBe(body.leftAt);
    // The credential is never logged.
    expect(s.logs.text).not.toContain(reg.credential);
    expect(s.logs.text).toContain('provider left the cluster');
  });

  it('refuses a missing, unknown or replaced credential with 401 and changes nothing', async () => {
    const s = await start();
    const first = registered(await postRegister(s));
    // Registering again (with proof) replaces the credential: the old one is no one's now.
    const second = registered(await postRegister(s, { currentCredential: first.credential }));
    for (const credential of [undefined, first.credential, 'x'.repeat(43), ENROLLMENT_TOKEN, ADMIN_TOKEN]) {
      const res = await deregister(s, credential);
      expect(res.status, String(credential)).toBe(401);
      expect(error(res.body).code).toBe('credential_rejected');
    }
    expect((await summary(s, second.providerId)).leftAt).toBeNull();
    expect((await postHeartbeat(s, second)).status).toBe(200);
  });

  it('refuses the credential of a revoked provider (already gone)', async () => {
    const s = await start();
    const reg = registered(await postRegister(s));
    expect((await s.call('POST', `/api/providers/${reg.providerId}/revoke`, { token: ADMIN_TOKEN })).status).toBe(200);
    const res = await deregister(s, reg.credential);
    expect(res.status).toBe(401);
    expect(error(res.body).message).toContain('was revoked');
    expect((await summary(s, reg.providerId)).leftAt).toBeNull();
  });

  it('is rate-limited per client address like heartbeats, with Retry-After', async () => {
    const s = await start({ rateLimits: { ...NO_RATE_LIMITS, heartbeatPerClient: { max: 3, windowSeconds: 60 } } });
    for (let i = 0; i < 3; i++)
      expect((await deregister(s, `stranger-guess-${i}-0123456789abcdefghijk`)).status).toBe(401);
    const limited = await deregister(s, 'stranger-guess-3-0123456789abcdefghijk');
    expect(limited.status).toBe(429);
    expect(error(limited.body).code).toBe('rate_limited');
    expect(error(limited.body).message).toMatch(/^more than 3 deregistrations a minute from this address/);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another client is not held back, and heartbeats keep their own count.
    const reg = registered(await postRegister(s, {}, '127.0.0.2'));
    expect((await postHeartbeat(s, reg, {}, '127.0.0.1')).status).toBe(200);
    expect((await deregister(s, reg.credential, '127.0.0.2')).status).toBe(200);
  });
});

describe('a provider that left', () => {
  it('is dropped by the next gateway sync, and its overlay address goes back to the pool', async () => {
    const s = await start({ overlayNetwork: '100.96.0.0/16', rateLimits: NO_RATE_LIMITS });
    const gatewayKey = wireguardKey();
    const sync = async () => {
      const res = await s.call('POST', '/api/gateway/sync', {
        token: GATEWAY_TOKEN,
        body: { publicKey: gatewayKey, endpoint: 'gateway.cluster.test:51820', routes: [], peers: [] },
      });
      expect(res.status, res.text).toBe(200);
      return GatewaySyncResponse.parse(res.body).peers;
    };
    await sync();
    const keyA = wireguardKey();
    const a = registered(await postRegister(s, { installId: INSTALL_A, wireguardPublicKey: keyA }));
    expect(await sync()).toEqual([{ providerId: a.providerId, publicKey: keyA, address: '100.96.0.2' }]);

    expect((await deregister(s, a.credential)).status).toBe(200);
    expect(await sync()).toEqual([]);

    // A new machine gets the address the leaver held; the leaver keeps it on record.
    const keyB = wireguardKey();
    const b = registered(await postRegister(s, { installId: INSTALL_B, wireguardPublicKey: keyB }));
    expect(await sync()).toEqual([{ providerId: b.providerId, publicKey: keyB, address: '100.96.0.2' }]);
    expect((await summary(s, a.providerId)).overlayAddress).toBe('100.96.0.2');
  });

  it('may register again with a valid enrollment token: the same provider, a new credential, live again', async () => {
    const s = await start({ overlayNetwork: '100.96.0.0/16', rateLimits: NO_RATE_LIMITS });
    const key = wireguardKey();
    const first = registered(await postRegister(s, { installId: INSTALL_A, wireguardPublicKey: key }));
    expect((await deregister(s, first.credential)).status).toBe(200);
    // Its address is taken meanwhile by another machine.
    registered(await postRegister(s, { installId: INSTALL_B, wireguardPublicKey: wireguardKey() }));

    // Without a valid enrollment token: no.
    const refused = await s.call('POST', '/api/register', {
      token: 'not-the-enrollment-token-0123456789',
      body: registerBody({ installId: INSTALL_A }),
    });
    expect(refused.status).toBe(401);

    // Another enrollment token than the first one (the operator issued a fresh one) is enough.
    const fresh = s.store.createEnrollmentToken({ label: 'rejoin' });
    const back = await s.call('POST', '/api/register', {
      token: fresh.token,
      body: registerBody({ installId: INSTALL_A, wireguardPublicKey: key }),
    });
    const again: RegisterResponse = registered(back);
    expect(again.providerId).toBe(first.providerId);
    expect(again.credential).not.toBe(first.credential);
    expect(await summary(s, first.providerId)).toMatchObject({
      leftAt: null,
      registrations: 2,
      overlayAddress: '100.96.0.3',
    });
    expect((await postHeartbeat(s, again)).status).toBe(200);
    expect((await summary(s, first.providerId)).health).toBe('healthy');
    // The credential it left with stays dead.
    expect((await postHeartbeat(s, first)).status).toBe(401);
  });

  it('may share its old key and address with a live provider in the database (they are no longer its)', async () => {
    const s = await start({ overlayNetwork: '100.96.0.0/16', rateLimits: NO_RATE_LIMITS });
    const key = wireguardKey();
    const a = registered(await postRegister(s, { installId: INSTALL_A, wireguardPublicKey: key }));
    expect((await deregister(s, a.credential)).status).toBe(200);
    // The same tunnel key on a new install (a tunnel volume kept by hand) is free to use.
    const b = registered(await postRegister(s, { installId: INSTALL_B, wireguardPublicKey: key }));
    expect(await summary(s, b.providerId)).toMatchObject({ overlayAddress: '100.96.0.2', health: 'never' });
  });
});

describe('schema version 4 (left_at)', () => {
  it('brings a version 3 file forward: its providers are live, and a left one may share a key and address', () => {
    const tmp = tempDir('manager-deregister-');
    try {
      const file = join(tmp.dir, 'm.db');
      const old = new Database(file);
      migrate(old, MIGRATIONS.slice(0, 3));
      old
        .prepare(
          `INSERT INTO providers (id, install_id, credential_hash, hostname, ip_address, cpu_cores, memory_bytes,
             limit_cpus, limit_memory_bytes, version_agent, version_ray, version_python, registered_at,
             last_registered_at, wireguard_public_key, overlay_address)
           VALUES ('prv-v3v3v3v3v3v3', ?, ?, 'old-host', '192.0.2.7', 8, 17179869184, 2, 4294967296, '0.1.0',
             '2.58.0', '3.11.2', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', ?, '100.96.0.2')`,
        )
        .run(INSTALL_A, hashSecret('v3-credential-0123456789abcdefghijklmnop'), wireguardKey());
      old.close();
      const store = new Store(file);
      expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(store.getProvider('prv-v3v3v3v3v3v3', 10)).toMatchObject({ leftAt: null, health: 'never' });
      expect(
        store.deregister('v3-credential-0123456789abcdefghijklmnop', new Date('2026-02-01T00:00:00.000Z')),
      ).toEqual({ kind: 'left', providerId: 'prv-v3v3v3v3v3v3', leftAt: '2026-02-01T00:00:00.000Z' });
      // The database lets a live provider take the key and address the leaver held.
      store.db
        .prepare(
          `INSERT INTO providers (id, install_id, credential_hash, hostname, ip_address, cpu_cores, memory_bytes,
             limit_cpus, limit_memory_bytes, version_agent, version_ray, version_python, registered_at,
             last_registered_at, wireguard_public_key, overlay_address)
           SELECT 'prv-newnewnewnew', ?, 'x', hostname, ip_address, cpu_cores, memory_bytes, limit_cpus,
             limit_memory_bytes, version_agent, version_ray, version_python, registered_at, last_registered_at,
             wireguard_public_key, overlay_address FROM providers WHERE id = 'prv-v3v3v3v3v3v3'`,
        )
        .run(INSTALL_B);
      store.close();
    } finally {
      tmp.remove();
    }
  });
});
