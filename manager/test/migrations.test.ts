import { join } from 'node:path';
import { HeartbeatRequest } from '@ray-agent/protocol';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, type Migration, migrate, SCHEMA_VERSION } from '../src/migrations.js';
import { Store } from '../src/store.js';
import { hashSecret } from '../src/tokens.js';
import { BOOT_ID, heartbeatBody, overlayNetwork, registerBody, tempDir, wireguardKey } from './helpers.js';

let tmp: ReturnType<typeof tempDir>;
let file: string;

beforeEach(() => {
  tmp = tempDir('manager-migrations-');
  file = join(tmp.dir, 'm.db');
});
afterEach(() => tmp.remove());

/** The schema the first manager wrote (user_version 1), typed out as it shipped: no last_boot_id. */
const V1_SCHEMA = `
CREATE TABLE enrollment_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL UNIQUE, label TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT
);
CREATE TABLE admin_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT, hash TEXT NOT NULL UNIQUE, label TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL
);
CREATE TABLE providers (
  id TEXT PRIMARY KEY, install_id TEXT NOT NULL UNIQUE, credential_hash TEXT NOT NULL,
  enrollment_token_id INTEGER REFERENCES enrollment_tokens(id), hostname TEXT NOT NULL, ip_address TEXT NOT NULL,
  cpu_cores INTEGER NOT NULL, memory_bytes INTEGER NOT NULL, limit_cpus REAL NOT NULL,
  limit_memory_bytes INTEGER NOT NULL, version_agent TEXT NOT NULL, version_ray TEXT NOT NULL,
  version_python TEXT NOT NULL, registered_at TEXT NOT NULL, last_registered_at TEXT NOT NULL,
  registrations INTEGER NOT NULL DEFAULT 1, heartbeats INTEGER NOT NULL DEFAULT 0, last_heartbeat_at TEXT,
  last_sent_at TEXT, last_state TEXT, last_ray_node TEXT, last_cpu_percent REAL, last_memory_bytes INTEGER,
  last_memory_percent REAL, active_tasks INTEGER NOT NULL DEFAULT 0, recent_errors TEXT
);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
PRAGMA user_version = 1;
`;

const TOKEN = 'v1-enrollment-token-0123456789abcdef';
const CREDENTIAL = 'v1-credential-0123456789abcdefghijklmnopqrstuv';
const ADMIN = 'v1-admin-token-0123456789abcdef';

function writeV1File(): void {
  const db = new Database(file);
  db.exec(V1_SCHEMA);
  db.prepare(
    "INSERT INTO enrollment_tokens (hash, label, created_at) VALUES (?, 'fleet', '2026-01-01T00:00:00.000Z')",
  ).run(hashSecret(TOKEN));
  db.prepare("INSERT INTO admin_tokens (hash, label, created_at) VALUES (?, 'ops', '2026-01-01T00:00:00.000Z')").run(
    hashSecret(ADMIN),
  );
  db.prepare(
    `INSERT INTO providers (id, install_id, credential_hash, enrollment_token_id, hostname, ip_address, cpu_cores,
       memory_bytes, limit_cpus, limit_memory_bytes, version_agent, version_ray, version_python, registered_at,
       last_registered_at, registrations, heartbeats, last_heartbeat_at, last_state, active_tasks)
     VALUES ('prv-v1v1v1v1v1v1', '7c9e6679-7425-40de-944b-e07fc1f90ae7', ?, 1, 'old-host', '192.0.2.7', 8,
       17179869184, 2.5, 4294967296, '0.1.0', '2.58.0', '3.11.2', '2026-01-01T00:00:00.000Z',
       '2026-01-02T00:00:00.000Z', 3, 41, '2026-01-02T00:05:00.000Z', 'contributing', 2)`,
  ).run(hashSecret(CREDENTIAL));
  db.prepare("INSERT INTO settings (key, value) VALUES ('heartbeat_interval_seconds', '10')").run();
  db.close();
}

function snapshot(db: Database.Database): unknown {
  return {
    version: db.pragma('user_version', { simple: true }),
    schema: db.prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all(),
    providers: db.prepare('SELECT * FROM providers ORDER BY id').all(),
    tokens: db.prepare('SELECT * FROM enrollment_tokens ORDER BY id').all(),
    settings: db.prepare('SELECT * FROM settings ORDER BY key').all(),
  };
}

/** A version 2 file, as the manager before the overlay left it: version 1 plus last_boot_id. */
function writeV2File(): void {
  writeV1File();
  const db = new Database(file);
  db.exec(
    "ALTER TABLE providers ADD COLUMN last_boot_id TEXT; UPDATE providers SET last_boot_id = 'b0b0b0b0-0000-4000-8000-000000000000'; PRAGMA user_version = 2;",
  );
  db.close();
}

describe('schema migrations', () => {
  it('are numbered 1, 2, ... in order, each with a description', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    for (const m of MIGRATIONS) expect(m.description.length).toBeGreaterThan(10);
  });

  it('bring a version 1 file forward with its data intact', () => {
    writeV1File();
    const store = new Store(file);
    expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    const columns = store.db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('providers')").all();
    expect(columns.map((c) => c.name)).toContain('last_boot_id');
    expect(store.getProvider('prv-v1v1v1v1v1v1', 10, new Date('2026-01-02T00:05:10.000Z'))).toMatchObject({
      hostname: 'old-host',
      cpuCores: 8,
      limits: { cpus: 2.5, memoryBytes: 4294967296 },
      registrations: 3,
      heartbeats: 41,
      lastState: 'contributing',
      activeTasks: 2,
      health: 'healthy',
    });
    expect(store.checkCredential('prv-v1v1v1v1v1v1', CREDENTIAL)).toBe('ok');
    expect(store.checkEnrollmentToken(TOKEN)).toBe(1);
    expect(store.checkAdminToken(ADMIN)).toBe(true);
    expect(store.getSetting('heartbeat_interval_seconds')).toBe('10');
    // The migrated provider works: a heartbeat after the old boot's lease (none was recorded) is accepted.
    const hb = HeartbeatRequest.parse(heartbeatBody('prv-v1v1v1v1v1v1'));
    expect(store.acceptHeartbeat(hb, 10)).toMatchObject({ kind: 'accepted', reason: 'first_boot' });
    expect(store.getProviderRecord('prv-v1v1v1v1v1v1')).toMatchObject({ hostname: 'old-host' });
    store.close();
    const raw = new Database(file, { readonly: true });
    expect(raw.prepare('SELECT last_boot_id FROM providers').get()).toEqual({ last_boot_id: BOOT_ID });
    raw.close();
  });

  it('bring a version 2 file to the overlay schema: no key, no address, not revoked, no gateway yet', () => {
    writeV2File();
    const store = new Store(file);
    expect(store.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(store.getProvider('prv-v1v1v1v1v1v1', 10, new Date('2026-01-02T00:05:10.000Z'))).toMatchObject({
      hostname: 'old-host',
      heartbeats: 41,
      health: 'healthy',
      revokedAt: null,
      overlayAddress: null,
      tunnel: null,
      gatewayPeer: null,
    });
    expect(store.getGateway()).toBeNull();
    expect(store.checkCredential('prv-v1v1v1v1v1v1', CREDENTIAL)).toBe('ok');
    // The old provider registers again with a key and gets the first provider address.
    const key = wireguardKey();
    const again = store.register(
      {
        ...(registerBody() as Parameters<Store['register']>[0]),
        currentCredential: CREDENTIAL,
        wireguardPublicKey: key,
      },
      null,
      new Date(),
      overlayNetwork('100.96.0.0/16'),
    );
    expect(again).toMatchObject({
      providerId: 'prv-v1v1v1v1v1v1',
      created: false,
      peer: { publicKey: key, address: '100.96.0.2' },
    });
    // The database itself refuses a second live provider with that key or that address; a revoked one may share them.
    let copies = 0;
    const copy = (what: { key: boolean; address: boolean }, revokedAt: string | null) => {
      copies += 1;
      store.db
        .prepare(
          `INSERT INTO providers (id, install_id, credential_hash, hostname, ip_address, cpu_cores, memory_bytes,
             limit_cpus, limit_memory_bytes, version_agent, version_ray, version_python, registered_at,
             last_registered_at, wireguard_public_key, overlay_address, revoked_at)
           SELECT ?, ?, credential_hash, hostname, ip_address, cpu_cores, memory_bytes, limit_cpus, limit_memory_bytes,
             version_agent, version_ray, version_python, registered_at, last_registered_at,
             CASE WHEN ? THEN wireguard_public_key END, CASE WHEN ? THEN overlay_address END, ?
           FROM providers WHERE id = 'prv-v1v1v1v1v1v1'`,
        )
        .run(`prv-copy-${copies}`, crypto.randomUUID(), Number(what.key), Number(what.address), revokedAt);
    };
    expect(() => copy({ key: true, address: false }, null)).toThrow(
      'UNIQUE constraint failed: providers.wireguard_public_key',
    );
    expect(() => copy({ key: false, address: true }, null)).toThrow(
      'UNIQUE constraint failed: providers.overlay_address',
    );
    expect(() => copy({ key: true, address: true }, '2026-01-03T00:00:00.000Z')).not.toThrow();
    store.close();
  });

  it('are a no-op the second time', () => {
    writeV1File();
    new Store(file).close();
    const db = new Database(file);
    const before = snapshot(db);
    expect(migrate(db)).toEqual([]);
    expect(snapshot(db)).toEqual(before);
    db.close();
    new Store(file).close();
    const again = new Database(file);
    expect(snapshot(again)).toEqual(before);
    again.close();
  });

  it('create a new file through every step', () => {
    const db = new Database(file);
    expect(migrate(db)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    db.close();
  });

  it('refuse a file from a newer manager, naming both versions, and leave it alone', () => {
    new Store(file).close();
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => new Store(file)).toThrow(
      `database schema version ${SCHEMA_VERSION + 1} is newer than this manager understands (${SCHEMA_VERSION}); upgrade the manager`,
    );
    const after = new Database(file, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
    after.close();
  });

  it('roll a failing step back whole, leaving the file at the version before it', () => {
    const steps: Migration[] = [
      { version: 1, description: 'a table', up: (db) => db.exec('CREATE TABLE a (x INTEGER)') },
      {
        version: 2,
        description: 'half a change',
        up: (db) => {
          db.exec('CREATE TABLE b (y INTEGER)');
          throw new Error('disk full');
        },
      },
    ];
    const db = new Database(file);
    expect(() => migrate(db, steps)).toThrow('disk full');
    expect(db.pragma('user_version', { simple: true })).toBe(1);
    const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all();
    expect(tables.map((t) => t.name)).toEqual(['a']);
    db.close();
  });

  it('refuse a list with a gap or out of order', () => {
    const db = new Database(file);
    const noop = () => {};
    expect(() =>
      migrate(db, [
        { version: 1, description: 'one', up: noop },
        { version: 3, description: 'three', up: noop },
      ]),
    ).toThrow('migration 3 (three) does not follow 1');
    db.close();
  });
});
