import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HeartbeatRequest, ProviderId, RegisterRequest } from '@ray-agent/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, Store } from '../src/store.js';
import { bearerToken, generateProviderId, generateSecret, hashSecret } from '../src/tokens.js';
import { heartbeatBody, registerBody, tempDir } from './helpers.js';

let tmp: ReturnType<typeof tempDir>;
let file: string;

beforeEach(() => {
  tmp = tempDir('manager-store-');
  file = join(tmp.dir, 'm.db');
});
afterEach(() => tmp.remove());

const req = (overrides: Record<string, unknown> = {}) => RegisterRequest.parse(registerBody(overrides));

describe('tokens', () => {
  it('generates 32-byte base64url secrets and valid provider ids', () => {
    const a = generateSecret();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(32);
    expect(generateSecret()).not.toBe(a);
    for (let i = 0; i < 200; i++) {
      const id = generateProviderId();
      expect(id).toMatch(/^prv-[a-z2-7]{12}$/);
      expect(ProviderId.safeParse(id).success).toBe(true);
    }
    expect(hashSecret('x')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('parses bearer headers strictly', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer   abc ')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeNull();
    expect(bearerToken('Bearer')).toBeNull();
    expect(bearerToken('Bearer a b')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
  });
});

describe('Store', () => {
  it('sets WAL, synchronous=NORMAL and the schema version', () => {
    const store = new Store(file);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('synchronous', { simple: true })).toBe(1);
    expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    store.close();
  });

  it('refuses a database from a newer manager', () => {
    new Store(file).close();
    const raw = new Store(file);
    raw.db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => new Store(file)).toThrow(/newer/);
  });

  it('survives a restart: providers, counters, credentials and tokens are kept', () => {
    let store = new Store(file);
    const token = store.createEnrollmentToken({ label: 'fleet' });
    const tokenId = store.checkEnrollmentToken(token.token);
    expect(tokenId).toBe(token.id);
    store.ensureAdminToken('admin-token-abcdefghijklmnop', 'file');
    const first = store.register(req(), tokenId);
    const second = store.register(req(), tokenId);
    expect(second.providerId).toBe(first.providerId);
    expect(store.recordHeartbeat(HeartbeatRequest.parse(heartbeatBody(first.providerId, { activeTasks: 5 })))).toBe(
      true,
    );
    store.close();

    store = new Store(file);
    expect(store.checkEnrollmentToken(token.token)).toBe(token.id);
    expect(store.checkAdminToken('admin-token-abcdefghijklmnop')).toBe(true);
    expect(store.checkCredential(first.providerId, second.credential)).toBe('ok');
    expect(store.checkCredential(first.providerId, first.credential)).toBe('rejected');
    expect(store.checkCredential('prv-nonexistent00', second.credential)).toBe('unknown_provider');
    const [summary] = store.listProviders(10);
    expect(summary).toMatchObject({ providerId: first.providerId, registrations: 2, heartbeats: 1, activeTasks: 5 });
    // A restarted agent with the same installId keeps its provider.
    expect(store.register(req(), tokenId).providerId).toBe(first.providerId);
    expect(store.listProviders(10)).toHaveLength(1);
    store.close();
  });

  it('stores secrets only as hashes', () => {
    const store = new Store(file);
    const enrollment = store.createEnrollmentToken();
    const admin = 'admin-secret-token-zyxwvutsrqponm';
    store.ensureAdminToken(admin, 'file');
    const reg = store.register(req(), enrollment.id);
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    store.close();
    const bytes = readdirSync(tmp.dir)
      .filter((f) => f.startsWith('m.db'))
      .map((f) => readFileSync(join(tmp.dir, f)).toString('latin1'))
      .join('');
    for (const secret of [enrollment.token, admin, reg.credential]) {
      expect(bytes).not.toContain(secret);
      expect(bytes).toContain(hashSecret(secret));
    }
  });

  it('revokes, expires and lists enrollment tokens without secrets', () => {
    const store = new Store(file);
    const t0 = new Date('2026-01-01T00:00:00.000Z');
    const a = store.createEnrollmentToken({ label: 'a', now: t0 });
    const b = store.createEnrollmentToken({ label: 'b', expiresInHours: 1, now: t0 });
    const later = new Date(t0.getTime() + 2 * 3_600_000);
    expect(store.checkEnrollmentToken(b.token, t0)).toBe(b.id);
    expect(store.checkEnrollmentToken(b.token, later)).toBeNull();
    expect(store.revokeEnrollmentToken(a.id, t0)).toBe(true);
    expect(store.revokeEnrollmentToken(999)).toBe(false);
    expect(store.checkEnrollmentToken(a.token, t0)).toBeNull();
    const list = store.listEnrollmentTokens(later);
    expect(list.map((t) => [t.id, t.label, t.status])).toEqual([
      [a.id, 'a', 'revoked'],
      [b.id, 'b', 'expired'],
    ]);
    expect(JSON.stringify(list)).not.toContain(a.token);
    store.close();
  });

  it('ensures a seeded token exists once and keeps a revoked one revoked', () => {
    const store = new Store(file);
    const first = store.ensureEnrollmentToken('seeded-token-0123456789', 'file');
    const again = store.ensureEnrollmentToken('seeded-token-0123456789', 'file');
    expect(first.created).toBe(true);
    expect(again).toMatchObject({ id: first.id, created: false, status: 'active' });
    store.revokeEnrollmentToken(first.id);
    expect(store.ensureEnrollmentToken('seeded-token-0123456789', 'file').status).toBe('revoked');
    expect(store.listEnrollmentTokens()).toHaveLength(1);
    store.close();
  });
});
