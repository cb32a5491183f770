import type Database from 'better-sqlite3';

/** One schema change. `version` is what `PRAGMA user_version` reads once `up` has run. */
export interface Migration {
  version: number;
  description: string;
  up(db: Database.Database): void;
}

/**
 * Every schema change, oldest first. Append new steps; never edit or reorder a released one (files in the field
 * were made by it). Version 1 is the schema the first manager created.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'enrollment tokens, admin tokens, providers, settings',
    up(db) {
      db.exec(`
        CREATE TABLE IF NOT EXISTS enrollment_tokens (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          hash TEXT NOT NULL UNIQUE,
          label TEXT NOT NULL DEFAULT '',
          created_at TEXT NOT NULL,
          expires_at TEXT,
          revoked_at TEXT
        );
        CREATE TABLE IF NOT EXISTS admin_tokens (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          hash TEXT NOT NULL UNIQUE,
          label TEXT NOT NULL DEFAULT '',
          created_at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS providers (
          id TEXT PRIMARY KEY,
          install_id TEXT NOT NULL UNIQUE,
          credential_hash TEXT NOT NULL,
          enrollment_token_id INTEGER REFERENCES enrollment_tokens(id),
          hostname TEXT NOT NULL,
          ip_address TEXT NOT NULL,
          cpu_cores INTEGER NOT NULL,
          memory_bytes INTEGER NOT NULL,
          limit_cpus REAL NOT NULL,
          limit_memory_bytes INTEGER NOT NULL,
          version_agent TEXT NOT NULL,
          version_ray TEXT NOT NULL,
          version_python TEXT NOT NULL,
          registered_at TEXT NOT NULL,
          last_registered_at TEXT NOT NULL,
          registrations INTEGER NOT NULL DEFAULT 1,
          heartbeats INTEGER NOT NULL DEFAULT 0,
          last_heartbeat_at TEXT,
          last_sent_at TEXT,
          last_state TEXT,
          last_ray_node TEXT,
          last_cpu_percent REAL,
          last_memory_bytes INTEGER,
          last_memory_percent REAL,
          active_tasks INTEGER NOT NULL DEFAULT 0,
          recent_errors TEXT
        );
        CREATE TABLE IF NOT EXISTS settings (
          key TEXT PRIMARY KEY,
          value TEXT NOT NULL
        );
      `);
    },
  },
  {
    version: 2,
    description: 'providers.last_boot_id: the boot that holds the identity lease',
    up(db) {
      db.exec('ALTER TABLE providers ADD COLUMN last_boot_id TEXT');
    },
  },
  {
    version: 3,
    description: 'the WireGuard overlay: provider keys, overlay addresses, revocation, tunnel reports, the gateway',
    up(db) {
      // A key and an address belong to at most one live provider; a revoked provider keeps both for the record.
      db.exec(`
        ALTER TABLE providers ADD COLUMN wireguard_public_key TEXT;
        ALTER TABLE providers ADD COLUMN overlay_address TEXT;
        ALTER TABLE providers ADD COLUMN revoked_at TEXT;
        ALTER TABLE providers ADD COLUMN tunnel_report TEXT;
        ALTER TABLE providers ADD COLUMN gateway_peer TEXT;
        CREATE UNIQUE INDEX providers_live_wireguard_key ON providers (wireguard_public_key)
          WHERE wireguard_public_key IS NOT NULL AND revoked_at IS NULL;
        CREATE UNIQUE INDEX providers_live_overlay_address ON providers (overlay_address)
          WHERE overlay_address IS NOT NULL AND revoked_at IS NULL;
        CREATE TABLE gateway (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          public_key TEXT NOT NULL,
          endpoint TEXT NOT NULL,
          routes TEXT NOT NULL,
          last_sync_at TEXT NOT NULL
        );
      `);
    },
  },
  {
    version: 4,
    description: 'providers.left_at: a provider that deregistered itself ("Leave this cluster")',
    up(db) {
      // A provider that left is no longer live: its key and address go back to the pool, like a revoked one's.
      // Deregistration finds the provider by its credential alone, hence the index on the hash.
      db.exec(`
        ALTER TABLE providers ADD COLUMN left_at TEXT;
        DROP INDEX providers_live_wireguard_key;
        DROP INDEX providers_live_overlay_address;
        CREATE UNIQUE INDEX providers_live_wireguard_key ON providers (wireguard_public_key)
          WHERE wireguard_public_key IS NOT NULL AND revoked_at IS NULL AND left_at IS NULL;
        CREATE UNIQUE INDEX providers_live_overlay_address ON providers (overlay_address)
          WHERE overlay_address IS NOT NULL AND revoked_at IS NULL AND left_at IS NULL;
        CREATE INDEX providers_credential_hash ON providers (credential_hash);
      `);
    },
  },
  {
    version: 5,
    description: 'index providers (registered_at, id): the listing is paginated by that key',
    up(db) {
      // Keyset pagination: each page is one index range scan, whatever the fleet's size.
      db.exec('CREATE INDEX providers_registered ON providers (registered_at, id);');
    },
  },
];

/** The version a database has once every migration ran. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings a database forward: each step not yet applied runs in its own transaction together with its
 * `user_version` bump, so a step that fails leaves the file at the version before it. A file newer than the code is
 * refused (an older manager must not write a schema it does not know). Returns the versions applied.
 */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number[] {
  migrations.forEach((step, i) => {
    if (step.version !== i + 1) throw new Error(`migration ${step.version} (${step.description}) does not follow ${i}`);
  });
  const latest = migrations.length;
  const found = db.pragma('user_version', { simple: true }) as number;
  if (found > latest) {
    throw new Error(
      `database schema version ${found} is newer than this manager understands (${latest}); upgrade the manager`,
    );
  }
  const applied: number[] = [];
  for (const step of migrations) {
    if (step.version <= found) continue;
    // IMMEDIATE takes the write lock before the version is read again: a second process opening the same file at
    // the same moment (the CLI next to the server) waits, then finds the step done.
    const ran = db
      .transaction(() => {
        if ((db.pragma('user_version', { simple: true }) as number) >= step.version) return false;
        step.up(db);
        db.pragma(`user_version = ${step.version}`);
        return true;
      })
      .immediate();
    if (ran) applied.push(step.version);
  }
  return applied;
}
