import type {
  AgentState,
  GatewayPeer,
  GatewaySyncRequest,
  HeartbeatRequest,
  ProviderSummary,
  RegisterRequest,
  TunnelReport,
} from '@ray-agent/protocol';
import Database from 'better-sqlite3';
import { deriveHealth } from './health.js';
import { decideIdentity, type IdentityDecision } from './identity-lease.js';
import { migrate } from './migrations.js';
import { isProviderAddress, lowestFreeAddress, type OverlayNetwork } from './overlay-network.js';
import { generateProviderId, generateSecret, hashesEqual, hashSecret } from './tokens.js';

/** The schema version this code writes; see migrations.ts. */
export { SCHEMA_VERSION } from './migrations.js';

export interface EnrollmentTokenInfo {
  id: number;
  label: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  status: 'active' | 'expired' | 'revoked';
}

export interface ProviderRecord {
  providerId: string;
  installId: string;
  hostname: string;
  lastRayNode: string | null;
  lastMemoryPercent: number | null;
  recentErrors: string[];
  lastSentAt: string | null;
}

export type CredentialCheck = 'ok' | 'unknown_provider' | 'rejected' | { revokedAt: string } | { leftAt: string };

/**
 * What a heartbeat needs of its provider's row, read once per heartbeat (one SELECT by primary key) and shared by
 * the credential check and the identity lease.
 */
export interface HeartbeatView {
  id: string;
  credential_hash: string;
  revoked_at: string | null;
  left_at: string | null;
  last_boot_id: string | null;
  last_state: string | null;
  last_heartbeat_at: string | null;
  wireguard_public_key: string | null;
  overlay_address: string | null;
}

/** A page of the listing: at most `limit` providers after the provider `after` (registration order). */
export interface ProviderPage {
  limit: number;
  after?: string | undefined;
}

/** The newest accepted heartbeat of a provider, not yet written (see StoreOptions.heartbeatFlushMs). */
interface PendingHeartbeat {
  id: string;
  count: number;
  now: string;
  sentAt: string;
  state: string;
  rayNode: string;
  cpuPercent: number;
  memoryBytes: number;
  memoryPercent: number;
  activeTasks: number;
  recentErrors: string;
  bootId: string;
  tunnel: string | null;
}

/** The columns a heartbeat writes as it came, the same for a direct write and a batched one. */
function heartbeatFields(hb: HeartbeatRequest): Omit<PendingHeartbeat, 'id' | 'count' | 'now' | 'tunnel'> {
  return {
    sentAt: hb.sentAt,
    state: hb.state,
    rayNode: hb.rayNode,
    cpuPercent: hb.cpuPercent,
    memoryBytes: hb.memoryBytes,
    memoryPercent: hb.memoryPercent,
    activeTasks: hb.activeTasks,
    recentErrors: JSON.stringify(hb.recentErrors),
    bootId: hb.bootId,
  };
}

/** Heartbeats written per transaction when flushing: each transaction holds the event loop for a few ms only. */
const FLUSH_CHUNK = 256;

/**
 * What a deregistration did: the provider `left` now, or the credential is no one's current live one (unknown,
 * replaced by a later registration, revoked, or its provider left already: all read alike, as "already gone").
 */
export type DeregisterOutcome =
  | { kind: 'left'; providerId: string; leftAt: string }
  | { kind: 'rejected'; reason: 'unknown' }
  | { kind: 'rejected'; reason: 'revoked'; providerId: string; revokedAt: string }
  | { kind: 'rejected'; reason: 'left'; providerId: string; leftAt: string };

/**
 * Registering a known installId without proof of owning it: neither its current credential nor the enrollment
 * token that registered it last. Nothing was changed.
 */
export class InstallIdTakenError extends Error {
  override name = 'InstallIdTakenError';
  constructor(readonly providerId: string) {
    super('this installId is already registered to a provider');
  }
}

/**
 * Registering an installId whose provider the operator revoked. Revoked stays revoked: the install cannot come back
 * under that identity, whatever it proves. Nothing was changed.
 */
export class ProviderRevokedError extends Error {
  override name = 'ProviderRevokedError';
  constructor(
    readonly providerId: string,
    readonly revokedAt: string,
  ) {
    super(`provider ${providerId} was revoked at ${revokedAt}`);
  }
}

/** A WireGuard key that another live provider holds: two installs share one tunnel volume. Nothing was changed. */
export class WireguardKeyInUseError extends Error {
  override name = 'WireguardKeyInUseError';
  constructor(readonly holderProviderId: string) {
    super(`the WireGuard key is held by provider ${holderProviderId}`);
  }
}

/** Every provider address of the overlay network is taken by a live provider. Nothing was changed. */
export class OverlayFullError extends Error {
  override name = 'OverlayFullError';
  constructor(readonly network: string) {
    super(`the overlay network ${network} has no free provider address`);
  }
}

/** A provider's place on the overlay: its key and address, once it has both. */
export interface OverlayPeer {
  publicKey: string;
  address: string;
}

export type HeartbeatOutcome =
  | Extract<IdentityDecision, { kind: 'held' }>
  | (Extract<IdentityDecision, { kind: 'accepted' }> & {
      peer: OverlayPeer | null;
      keyRotated: boolean;
      addressMissing: boolean;
    })
  | { kind: 'unknown_provider' }
  | { kind: 'key_in_use'; holderProviderId: string };

export interface RegisterResult {
  providerId: string;
  /** The new credential, in clear: returned once to the agent, never stored. */
  credential: string;
  /** True when this installId was seen for the first time. */
  created: boolean;
  /** Null without a key, or without an overlay network to place it in. */
  peer: OverlayPeer | null;
}

/** What the gateway last told the manager about itself. */
export interface GatewayRecord {
  publicKey: string;
  endpoint: string;
  routes: string[];
  lastSyncAt: string;
}

/** The answer's peers, and the keyed providers left out because the overlay network is full. */
export interface GatewaySyncResult {
  peers: GatewayPeer[];
  unaddressed: string[];
}

interface EnrollmentTokenRow {
  id: number;
  hash: string;
  label: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

interface ProviderRow {
  id: string;
  install_id: string;
  credential_hash: string;
  hostname: string;
  ip_address: string;
  cpu_cores: number;
  memory_bytes: number;
  limit_cpus: number;
  limit_memory_bytes: number;
  version_agent: string;
  version_ray: string;
  version_python: string;
  registered_at: string;
  registrations: number;
  heartbeats: number;
  last_heartbeat_at: string | null;
  last_sent_at: string | null;
  last_state: string | null;
  last_ray_node: string | null;
  last_cpu_percent: number | null;
  last_memory_bytes: number | null;
  last_memory_percent: number | null;
  active_tasks: number;
  recent_errors: string | null;
  last_boot_id: string | null;
  enrollment_token_id: number | null;
  wireguard_public_key: string | null;
  overlay_address: string | null;
  revoked_at: string | null;
  /** Set when the provider deregistered itself; cleared when its installId registers again. */
  left_at: string | null;
  /** JSON TunnelReport. */
  tunnel_report: string | null;
  /** JSON ProviderSummary['gatewayPeer']. */
  gateway_peer: string | null;
}

interface GatewayRow {
  public_key: string;
  endpoint: string;
  routes: string;
  last_sync_at: string;
}

function tokenStatus(row: EnrollmentTokenRow, now: Date): EnrollmentTokenInfo['status'] {
  if (row.revoked_at !== null) return 'revoked';
  if (row.expires_at !== null && Date.parse(row.expires_at) <= now.getTime()) return 'expired';
  return 'active';
}

function tokenInfo(row: EnrollmentTokenRow, now: Date): EnrollmentTokenInfo {
  return {
    id: row.id,
    label: row.label,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    status: tokenStatus(row, now),
  };
}

/** A provider that takes part: neither revoked by the operator nor deregistered by itself. */
const LIVE = 'revoked_at IS NULL AND left_at IS NULL';

function prepareStatements(db: Database.Database) {
  return {
    enrollmentByHash: db.prepare<[string], EnrollmentTokenRow>('SELECT * FROM enrollment_tokens WHERE hash = ?'),
    enrollmentById: db.prepare<[number], EnrollmentTokenRow>('SELECT * FROM enrollment_tokens WHERE id = ?'),
    enrollmentAll: db.prepare<[], EnrollmentTokenRow>('SELECT * FROM enrollment_tokens ORDER BY id'),
    enrollmentInsert: db.prepare<[string, string, string, string | null]>(
      'INSERT INTO enrollment_tokens (hash, label, created_at, expires_at) VALUES (?, ?, ?, ?)',
    ),
    enrollmentRevoke: db.prepare<[string, number]>(
      'UPDATE enrollment_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL',
    ),
    adminByHash: db.prepare<[string], { id: number; hash: string }>('SELECT id, hash FROM admin_tokens WHERE hash = ?'),
    adminInsert: db.prepare<[string, string, string]>(
      'INSERT INTO admin_tokens (hash, label, created_at) VALUES (?, ?, ?)',
    ),
    providerById: db.prepare<[string], ProviderRow>('SELECT * FROM providers WHERE id = ?'),
    providerByInstallId: db.prepare<[string], ProviderRow>('SELECT * FROM providers WHERE install_id = ?'),
    providerAll: db.prepare<[], ProviderRow>('SELECT * FROM providers ORDER BY registered_at, id'),
    // Keyset pages over the index providers_registered (registered_at, id): the key never changes once written.
    providerPageFirst: db.prepare<[number], ProviderRow>('SELECT * FROM providers ORDER BY registered_at, id LIMIT ?'),
    providerPageAfter: db.prepare<[string, string, number], ProviderRow>(
      'SELECT * FROM providers WHERE (registered_at, id) > (?, ?) ORDER BY registered_at, id LIMIT ?',
    ),
    providerRegisteredAt: db.prepare<[string], { registered_at: string }>(
      'SELECT registered_at FROM providers WHERE id = ?',
    ),
    providerHeartbeatView: db.prepare<[string], HeartbeatView>(
      `SELECT id, credential_hash, revoked_at, left_at, last_boot_id, last_state, last_heartbeat_at,
         wireguard_public_key, overlay_address FROM providers WHERE id = ?`,
    ),
    // A batch's heartbeats: `count` of them since the last write, the newest one's fields.
    providerHeartbeatBatch: db.prepare(
      `UPDATE providers SET heartbeats = heartbeats + @count, last_heartbeat_at = @now, last_sent_at = @sentAt,
         last_state = @state, last_ray_node = @rayNode, last_cpu_percent = @cpuPercent,
         last_memory_bytes = @memoryBytes, last_memory_percent = @memoryPercent, active_tasks = @activeTasks,
         recent_errors = @recentErrors, last_boot_id = @bootId, tunnel_report = @tunnel
       WHERE id = @id`,
    ),
    providerInsert: db.prepare(
      `INSERT INTO providers (id, install_id, credential_hash, enrollment_token_id, hostname, ip_address, cpu_cores,
         memory_bytes, limit_cpus, limit_memory_bytes, version_agent, version_ray, version_python, registered_at,
         last_registered_at, registrations)
       VALUES (@id, @installId, @credentialHash, @enrollmentTokenId, @hostname, @ipAddress, @cpuCores, @memoryBytes,
         @limitCpus, @limitMemoryBytes, @versionAgent, @versionRay, @versionPython, @now, @now, 1)`,
    ),
    providerReregister: db.prepare(
      `UPDATE providers SET credential_hash = @credentialHash, enrollment_token_id = @enrollmentTokenId,
         hostname = @hostname, ip_address = @ipAddress, cpu_cores = @cpuCores, memory_bytes = @memoryBytes,
         limit_cpus = @limitCpus, limit_memory_bytes = @limitMemoryBytes, version_agent = @versionAgent,
         version_ray = @versionRay, version_python = @versionPython, last_registered_at = @now,
         registrations = registrations + 1
       WHERE id = @id`,
    ),
    providerHeartbeat: db.prepare(
      `UPDATE providers SET heartbeats = heartbeats + 1, last_heartbeat_at = @now, last_sent_at = @sentAt,
         last_state = @state, last_ray_node = @rayNode, last_cpu_percent = @cpuPercent,
         last_memory_bytes = @memoryBytes, last_memory_percent = @memoryPercent, active_tasks = @activeTasks,
         recent_errors = @recentErrors, last_boot_id = @bootId
       WHERE id = @id`,
    ),
    providerLiveByKey: db.prepare<[string], { id: string }>(
      `SELECT id FROM providers WHERE wireguard_public_key = ? AND ${LIVE}`,
    ),
    providerLiveAddresses: db.prepare<[], { id: string; overlay_address: string }>(
      `SELECT id, overlay_address FROM providers WHERE overlay_address IS NOT NULL AND ${LIVE}`,
    ),
    providerLiveKeyed: db.prepare<[], ProviderRow>(
      `SELECT * FROM providers WHERE wireguard_public_key IS NOT NULL AND ${LIVE} ORDER BY registered_at, id`,
    ),
    providerSetKey: db.prepare<[string | null, string]>(
      'UPDATE providers SET wireguard_public_key = ?, gateway_peer = NULL WHERE id = ?',
    ),
    providerSetAddress: db.prepare<[string, string]>('UPDATE providers SET overlay_address = ? WHERE id = ?'),
    providerRevoke: db.prepare<[string, string]>(
      'UPDATE providers SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL',
    ),
    providerByCredentialHash: db.prepare<[string], ProviderRow>('SELECT * FROM providers WHERE credential_hash = ?'),
    providerLeave: db.prepare<[string, string]>(
      `UPDATE providers SET left_at = ?, gateway_peer = NULL WHERE id = ? AND ${LIVE}`,
    ),
    // Back from having left: the key and address it held may be another live provider's by now, so it starts
    // without them (registration sets its key and finds it an address) in the same statement that makes it live.
    providerRejoin: db.prepare<[string]>(
      `UPDATE providers SET left_at = NULL, wireguard_public_key = NULL, overlay_address = NULL, gateway_peer = NULL
       WHERE id = ?`,
    ),
    gatewayPeersClear: db.prepare('UPDATE providers SET gateway_peer = NULL WHERE gateway_peer IS NOT NULL'),
    gatewayPeerSet: db.prepare<[string, string]>(
      `UPDATE providers SET gateway_peer = ? WHERE wireguard_public_key = ? AND ${LIVE}`,
    ),
    gatewayGet: db.prepare<[], GatewayRow>('SELECT * FROM gateway WHERE id = 1'),
    gatewaySet: db.prepare(
      `INSERT INTO gateway (id, public_key, endpoint, routes, last_sync_at) VALUES (1, @publicKey, @endpoint, @routes, @now)
       ON CONFLICT(id) DO UPDATE SET public_key = excluded.public_key, endpoint = excluded.endpoint,
         routes = excluded.routes, last_sync_at = excluded.last_sync_at`,
    ),
    settingGet: db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?'),
    settingSet: db.prepare<[string, string]>(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
    ),
  };
}

export interface StoreOptions {
  /** Open an existing file only; fail instead of creating an empty database. */
  mustExist?: boolean;
  /**
   * Write accepted heartbeats in batches, every this many ms (0 or absent: each heartbeat is written at once).
   * Crash-only: the newest heartbeat of each provider waits in memory and is written with the others in a few
   * short transactions; close() writes what is left. A kill -9 loses at most the last batch, about a second of
   * heartbeats, which every live agent replaces with its next one an interval later. Heartbeats that change who
   * holds an identity, or say `stopped`, are written at once: the lease must not forget a holder or a stop.
   * Readers of heartbeat fields in this process (the listing) see pending heartbeats; other processes on the same
   * file (the CLI) see them once written.
   */
  heartbeatFlushMs?: number;
}

/**
 * The manager's SQLite store. Secrets (enrollment tokens, admin tokens, provider credentials) are kept only as
 * SHA-256 hashes. Statements are prepared once; better-sqlite3 is synchronous, so every method is atomic with
 * respect to the others within one process, and WAL keeps concurrent CLI readers and the server safe.
 */
export class Store {
  readonly db: Database.Database;
  private readonly st: ReturnType<typeof prepareStatements>;
  private readonly registerTx: (
    req: RegisterRequest,
    enrollmentTokenId: number | null,
    now: Date,
    network: OverlayNetwork | null,
  ) => RegisterResult;
  private readonly heartbeatTx: (
    hb: HeartbeatRequest,
    intervalSeconds: number,
    now: Date,
    network: OverlayNetwork | null,
  ) => HeartbeatOutcome;
  private readonly gatewaySyncTx: (sync: GatewaySyncRequest, network: OverlayNetwork, now: Date) => GatewaySyncResult;
  private readonly deregisterTx: (credential: string, now: Date) => DeregisterOutcome;
  private readonly flushTx: (beats: PendingHeartbeat[]) => void;
  /** Accepted heartbeats not yet written, newest per provider (insertion order: oldest first). */
  private readonly pending = new Map<string, PendingHeartbeat>();
  private readonly flushTimer: NodeJS.Timeout | null;

  constructor(file: string, options: StoreOptions = {}) {
    this.db = new Database(file, { fileMustExist: options.mustExist === true });
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      migrate(this.db);
    } catch (err) {
      this.db.close();
      throw err;
    }
    this.st = prepareStatements(this.db);
    this.registerTx = this.db.transaction((req, enrollmentTokenId, now, network) =>
      this.registerInTx(req, enrollmentTokenId, now, network),
    );
    this.heartbeatTx = this.db.transaction((hb, intervalSeconds, now, network) =>
      this.heartbeatInTx(hb, intervalSeconds, now, network),
    );
    this.gatewaySyncTx = this.db.transaction((sync, network, now) => this.gatewaySyncInTx(sync, network, now));
    this.deregisterTx = this.db.transaction((credential, now) => this.deregisterInTx(credential, now));
    this.flushTx = this.db.transaction((beats: PendingHeartbeat[]) => {
      for (const beat of beats) this.st.providerHeartbeatBatch.run(beat);
    });
    const flushMs = options.heartbeatFlushMs ?? 0;
    this.flushTimer = flushMs > 0 ? setInterval(() => this.flushInChunks(), flushMs) : null;
    // The timer must not keep a finished process alive; close() writes what is left.
    this.flushTimer?.unref();
  }

  /** Writes every pending heartbeat, then closes the database. */
  close(): void {
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (!this.db.open) return;
    this.flush();
    this.db.close();
  }

  /** Heartbeats accepted but not yet written. */
  get pendingHeartbeats(): number {
    return this.pending.size;
  }

  /** Writes every pending heartbeat now, in transactions of FLUSH_CHUNK. */
  flush(): void {
    while (this.pending.size > 0) this.flushChunk();
  }

  private flushChunk(): void {
    const beats: PendingHeartbeat[] = [];
    for (const beat of this.pending.values()) {
      beats.push(beat);
      if (beats.length === FLUSH_CHUNK) break;
    }
    this.flushTx(beats);
    for (const beat of beats) this.pending.delete(beat.id);
  }

  /** The timer's flush: one chunk per turn of the event loop, so requests are answered between transactions. */
  private flushInChunks(): void {
    if (this.pending.size === 0 || !this.db.open) return;
    this.flushChunk();
    if (this.pending.size > 0) setImmediate(() => this.flushInChunks());
  }

  // --- enrollment tokens -------------------------------------------------------------------------------------

  /** Creates a new enrollment token; the clear token is returned once and never stored. */
  createEnrollmentToken(options: { label?: string; expiresInHours?: number; now?: Date } = {}): {
    id: number;
    token: string;
    expiresAt: string | null;
  } {
    const now = options.now ?? new Date();
    const token = generateSecret();
    const expiresAt =
      options.expiresInHours === undefined
        ? null
        : new Date(now.getTime() + options.expiresInHours * 3_600_000).toISOString();
    const info = this.st.enrollmentInsert.run(hashSecret(token), options.label ?? '', now.toISOString(), expiresAt);
    return { id: Number(info.lastInsertRowid), token, expiresAt };
  }

  /** Makes sure a given enrollment token exists (hashed). A token that was revoked stays revoked. */
  ensureEnrollmentToken(
    token: string,
    label: string,
    now: Date = new Date(),
  ): EnrollmentTokenInfo & { created: boolean } {
    const hash = hashSecret(token);
    const existing = this.st.enrollmentByHash.get(hash);
    if (existing) return { ...tokenInfo(existing, now), created: false };
    const info = this.st.enrollmentInsert.run(hash, label, now.toISOString(), null);
    const row = this.st.enrollmentById.get(Number(info.lastInsertRowid));
    if (!row) throw new Error('enrollment token vanished after insert');
    return { ...tokenInfo(row, now), created: true };
  }

  /** The id of the enrollment token if it exists, is not revoked and not expired; null otherwise. */
  checkEnrollmentToken(token: string, now: Date = new Date()): number | null {
    const row = this.st.enrollmentByHash.get(hashSecret(token));
    if (!row || tokenStatus(row, now) !== 'active') return null;
    return row.id;
  }

  /** Revokes a token; returns false when no such token exists. Revoking twice is harmless. */
  revokeEnrollmentToken(id: number, now: Date = new Date()): boolean {
    if (!this.st.enrollmentById.get(id)) return false;
    this.st.enrollmentRevoke.run(now.toISOString(), id);
    return true;
  }

  listEnrollmentTokens(now: Date = new Date()): EnrollmentTokenInfo[] {
    return this.st.enrollmentAll.all().map((row) => tokenInfo(row, now));
  }

  // --- admin tokens ------------------------------------------------------------------------------------------

  ensureAdminToken(token: string, label: string, now: Date = new Date()): { id: number; created: boolean } {
    const hash = hashSecret(token);
    const existing = this.st.adminByHash.get(hash);
    if (existing) return { id: existing.id, created: false };
    const info = this.st.adminInsert.run(hash, label, now.toISOString());
    return { id: Number(info.lastInsertRowid), created: true };
  }

  checkAdminToken(token: string): boolean {
    return this.st.adminByHash.get(hashSecret(token)) !== undefined;
  }

  // --- providers ---------------------------------------------------------------------------------------------

  /**
   * Registers a provider, idempotently per installId: the same installId always maps to the same providerId.
   * Every call issues a fresh credential and replaces the stored hash of the previous one. A known installId needs
   * proof (`req.currentCredential` is its current credential, or `enrollmentTokenId` registered it last), else
   * InstallIdTakenError: knowing an installId and holding some enrollment token must not be enough to take a
   * provider over. A revoked provider's installId is refused even with proof (ProviderRevokedError).
   *
   * A provider that left (deregistered itself) is not revoked: its installId registers again with any valid
   * enrollment token, as the same provider with a new credential (the person rejoins; the operator's token is the
   * permission). It comes back without its old key and address, which may be another provider's by now. Normally
   * a rejoining machine has a new installId anyway: leaving removes the agent's state volume.
   *
   * The WireGuard key is the request's: registering without one (the tunnel was removed) forgets the stored key.
   * With a key and an overlay `network`, the provider gets its overlay address: the one it holds, else the lowest
   * free one (OverlayFullError when there is none). A key held by another live provider: WireguardKeyInUseError.
   */
  register(
    req: RegisterRequest,
    enrollmentTokenId: number | null,
    now: Date = new Date(),
    network: OverlayNetwork | null = null,
  ): RegisterResult {
    return this.registerTx(req, enrollmentTokenId, now, network);
  }

  private registerInTx(
    req: RegisterRequest,
    enrollmentTokenId: number | null,
    now: Date,
    network: OverlayNetwork | null,
  ): RegisterResult {
    const credential = generateSecret();
    const params = {
      credentialHash: hashSecret(credential),
      enrollmentTokenId,
      hostname: req.hostname,
      ipAddress: req.ipAddress,
      cpuCores: req.cpuCores,
      memoryBytes: req.memoryBytes,
      limitCpus: req.limits.cpus,
      limitMemoryBytes: req.limits.memoryBytes,
      versionAgent: req.versions.agent,
      versionRay: req.versions.ray,
      versionPython: req.versions.python,
      now: now.toISOString(),
    };
    const existing = this.st.providerByInstallId.get(req.installId);
    const rejoining = existing !== undefined && existing.left_at !== null && existing.revoked_at === null;
    if (existing && !rejoining) {
      const sameToken = enrollmentTokenId !== null && existing.enrollment_token_id === enrollmentTokenId;
      const holdsCredential =
        req.currentCredential !== undefined && hashesEqual(existing.credential_hash, hashSecret(req.currentCredential));
      if (!sameToken && !holdsCredential) throw new InstallIdTakenError(existing.id);
      if (existing.revoked_at !== null) throw new ProviderRevokedError(existing.id, existing.revoked_at);
    }
    if (rejoining && enrollmentTokenId === null) throw new InstallIdTakenError(existing.id);
    const key = req.wireguardPublicKey ?? null;
    if (key !== null) {
      const holder = this.st.providerLiveByKey.get(key);
      if (holder && holder.id !== existing?.id) throw new WireguardKeyInUseError(holder.id);
    }
    let id = existing?.id;
    if (id === undefined) {
      id = generateProviderId();
      while (this.st.providerById.get(id)) id = generateProviderId();
      this.st.providerInsert.run({ ...params, id, installId: req.installId });
    } else {
      if (rejoining) this.st.providerRejoin.run(id);
      this.st.providerReregister.run({ ...params, id });
    }
    const storedKey = rejoining ? null : existing?.wireguard_public_key;
    if (key !== storedKey) this.st.providerSetKey.run(key, id);
    const address = key === null || network === null ? null : this.ensureAddress(id, network);
    if (key !== null && network !== null && address === null) throw new OverlayFullError(network.cidr);
    return {
      providerId: id,
      credential,
      created: existing === undefined,
      peer: key === null || address === null ? null : { publicKey: key, address },
    };
  }

  /**
   * The provider's overlay address in `network`: the one it holds when that is still a provider address of the
   * network, else the lowest free one, stored. Null when the network is full.
   */
  private ensureAddress(providerId: string, network: OverlayNetwork): string | null {
    const live = this.st.providerLiveAddresses.all();
    const held = live.find((row) => row.id === providerId)?.overlay_address;
    if (held !== undefined && isProviderAddress(network, held)) return held;
    const taken = live
      .filter((row) => row.id !== providerId && isProviderAddress(network, row.overlay_address))
      .map((row) => row.overlay_address);
    const address = lowestFreeAddress(network, taken);
    if (address !== null) this.st.providerSetAddress.run(address, providerId);
    return address;
  }

  /**
   * 'unknown_provider' when no such provider exists, 'rejected' when the credential is not its current one, and
   * `{ revokedAt }` when it is but the operator revoked the provider.
   */
  checkCredential(providerId: string, credential: string): CredentialCheck {
    return credentialOf(this.st.providerHeartbeatView.get(providerId) ?? null, credential);
  }

  /** The row a heartbeat needs (one SELECT), or null: no such provider. Pass it to credentialOf and acceptHeartbeat. */
  heartbeatView(providerId: string): HeartbeatView | null {
    return this.st.providerHeartbeatView.get(providerId) ?? null;
  }

  /**
   * The provider whose current credential this is leaves for good, in one transaction: its heartbeats are refused
   * from now on, the gateway drops its peer on its next sync, the listing shows it `left`. The credential alone
   * names the provider. A credential that is no live provider's current one is `rejected` and nothing changes, so
   * a second call reads as "already gone".
   */
  deregister(credential: string, now: Date = new Date()): DeregisterOutcome {
    return this.deregisterTx(credential, now);
  }

  private deregisterInTx(credential: string, now: Date): DeregisterOutcome {
    const row = this.st.providerByCredentialHash.get(hashSecret(credential));
    if (!row) return { kind: 'rejected', reason: 'unknown' };
    if (row.revoked_at !== null)
      return { kind: 'rejected', reason: 'revoked', providerId: row.id, revokedAt: row.revoked_at };
    if (row.left_at !== null) return { kind: 'rejected', reason: 'left', providerId: row.id, leftAt: row.left_at };
    const leftAt = now.toISOString();
    this.st.providerLeave.run(leftAt, row.id);
    return { kind: 'left', providerId: row.id, leftAt };
  }

  /**
   * Revokes a provider: its heartbeats are refused from now on, the gateway drops its peer on its next sync, and
   * its installId cannot register again. Revoking twice keeps the first time. False when there is no such provider.
   */
  revokeProvider(providerId: string, now: Date = new Date()): boolean {
    if (!this.st.providerRegisteredAt.get(providerId)) return false;
    this.st.providerRevoke.run(now.toISOString(), providerId);
    return true;
  }

  /** Stores the fields of a heartbeat and counts it. Returns false when the provider does not exist. */
  recordHeartbeat(hb: HeartbeatRequest, now: Date = new Date()): boolean {
    const info = this.st.providerHeartbeat.run({
      id: hb.providerId,
      now: now.toISOString(),
      ...heartbeatFields(hb),
    });
    return info.changes === 1;
  }

  /**
   * A heartbeat under the identity lease, decided and stored in one transaction: accepted (and recorded, its boot
   * now holding the lease) or `held` by another boot, or the provider does not exist.
   *
   * An accepted heartbeat stores its tunnel report. A `wireguardPublicKey` other than the stored one replaces it
   * (key rotation: the tunnel volume was replaced), unless another live provider holds it (`key_in_use`, nothing
   * stored); a heartbeat without one keeps the stored key. With an overlay `network`, a keyed provider without an
   * address gets one; `addressMissing` says the network was full.
   */
  acceptHeartbeat(
    hb: HeartbeatRequest,
    heartbeatIntervalSeconds: number,
    now: Date = new Date(),
    network: OverlayNetwork | null = null,
    /** The row read for the credential check; batched stores reuse it (the lease comes from memory then). */
    view?: HeartbeatView | null,
  ): HeartbeatOutcome {
    if (this.flushTimer === null) return this.heartbeatTx(hb, heartbeatIntervalSeconds, now, network);
    // Batched: no transaction needed. better-sqlite3 is synchronous and the pending heartbeat (always newer than
    // the row) is consulted for the lease, so nothing can come between the decision and its record.
    const row = view === undefined || view?.id !== hb.providerId ? this.heartbeatView(hb.providerId) : view;
    return this.heartbeatOn(row, hb, heartbeatIntervalSeconds, now, network);
  }

  private heartbeatInTx(
    hb: HeartbeatRequest,
    intervalSeconds: number,
    now: Date,
    network: OverlayNetwork | null,
  ): HeartbeatOutcome {
    return this.heartbeatOn(this.heartbeatView(hb.providerId), hb, intervalSeconds, now, network);
  }

  private heartbeatOn(
    row: HeartbeatView | null,
    hb: HeartbeatRequest,
    intervalSeconds: number,
    now: Date,
    network: OverlayNetwork | null,
  ): HeartbeatOutcome {
    if (!row) return { kind: 'unknown_provider' };
    const newer = this.pending.get(row.id);
    const decision = decideIdentity(
      newer
        ? { bootId: newer.bootId, lastState: newer.state, lastHeartbeatAt: newer.now }
        : { bootId: row.last_boot_id, lastState: row.last_state, lastHeartbeatAt: row.last_heartbeat_at },
      hb.bootId,
      intervalSeconds,
      now,
    );
    if (decision.kind === 'held') return decision;
    const key = hb.wireguardPublicKey ?? row.wireguard_public_key;
    const keyRotated = key !== row.wireguard_public_key;
    if (key !== null && keyRotated) {
      const holder = this.st.providerLiveByKey.get(key);
      if (holder && holder.id !== row.id) return { kind: 'key_in_use', holderProviderId: holder.id };
      this.st.providerSetKey.run(key, row.id);
    }
    const beat: PendingHeartbeat = {
      id: row.id,
      count: (newer?.count ?? 0) + 1,
      now: now.toISOString(),
      ...heartbeatFields(hb),
      tunnel: hb.tunnel === undefined ? null : JSON.stringify(hb.tunnel),
    };
    // Re-inserted so the map stays oldest first: a flush chunk writes the longest-waiting heartbeats.
    this.pending.delete(row.id);
    if (this.flushTimer === null || decision.reason !== 'same_boot' || hb.state === 'stopped')
      this.st.providerHeartbeatBatch.run(beat);
    else this.pending.set(row.id, beat);
    // The address it holds, when still one of the network's (a live provider's address is its own): no scan.
    const held = row.overlay_address;
    const address =
      key === null || network === null
        ? null
        : held !== null && !keyRotated && isProviderAddress(network, held)
          ? held
          : this.ensureAddress(row.id, network);
    return {
      ...decision,
      peer: key === null || address === null ? null : { publicKey: key, address },
      keyRotated,
      addressMissing: key !== null && network !== null && address === null,
    };
  }

  // --- the gateway -------------------------------------------------------------------------------------------

  /**
   * One sync of the gateway, in one transaction: stores what it said about itself and about each peer (a peer it
   * did not report has no gateway view), gives keyed live providers without an address in `network` one, and
   * returns the peers to admit: exactly the live providers with a key and an address.
   */
  syncGateway(sync: GatewaySyncRequest, network: OverlayNetwork, now: Date = new Date()): GatewaySyncResult {
    return this.gatewaySyncTx(sync, network, now);
  }

  private gatewaySyncInTx(sync: GatewaySyncRequest, network: OverlayNetwork, now: Date): GatewaySyncResult {
    this.st.gatewaySet.run({
      publicKey: sync.publicKey,
      endpoint: sync.endpoint,
      routes: JSON.stringify(sync.routes),
      now: now.toISOString(),
    });
    this.st.gatewayPeersClear.run();
    for (const peer of sync.peers) {
      const view = { lastHandshakeAt: peer.lastHandshakeAt, rxBytes: peer.rxBytes, txBytes: peer.txBytes };
      this.st.gatewayPeerSet.run(JSON.stringify(view), peer.publicKey);
    }
    const peers: GatewayPeer[] = [];
    const unaddressed: string[] = [];
    for (const row of this.st.providerLiveKeyed.all()) {
      const held = row.overlay_address;
      // Only a provider that got its key while no gateway was configured (or the network changed) lacks one.
      const address = held !== null && isProviderAddress(network, held) ? held : this.ensureAddress(row.id, network);
      if (address === null) unaddressed.push(row.id);
      else if (row.wireguard_public_key !== null)
        peers.push({ providerId: row.id, publicKey: row.wireguard_public_key, address });
    }
    return { peers, unaddressed };
  }

  /** What the gateway said at its last sync, or null when it never synced. */
  getGateway(): GatewayRecord | null {
    const row = this.st.gatewayGet.get();
    if (!row) return null;
    return {
      publicKey: row.public_key,
      endpoint: row.endpoint,
      routes: JSON.parse(row.routes) as string[],
      lastSyncAt: row.last_sync_at,
    };
  }

  /**
   * Every provider in registration order, or one page of them. Null when `page.after` names no provider (the
   * caller says so: a cursor is always a providerId the listing returned).
   */
  listProviders(heartbeatIntervalSeconds: number, now?: Date): ProviderSummary[];
  listProviders(heartbeatIntervalSeconds: number, now: Date, page: ProviderPage): ProviderSummary[] | null;
  listProviders(
    heartbeatIntervalSeconds: number,
    now: Date = new Date(),
    page?: ProviderPage,
  ): ProviderSummary[] | null {
    this.flush();
    let rows: ProviderRow[];
    if (page === undefined) rows = this.st.providerAll.all();
    else if (page.after === undefined) rows = this.st.providerPageFirst.all(page.limit);
    else {
      const cursor = this.st.providerRegisteredAt.get(page.after);
      if (!cursor) return null;
      rows = this.st.providerPageAfter.all(cursor.registered_at, page.after, page.limit);
    }
    return rows.map((row) => summarize(row, heartbeatIntervalSeconds, now));
  }

  getProvider(providerId: string, heartbeatIntervalSeconds: number, now: Date = new Date()): ProviderSummary | null {
    this.flush();
    const row = this.st.providerById.get(providerId);
    return row ? summarize(row, heartbeatIntervalSeconds, now) : null;
  }

  /** Fields kept by the store that the listing does not show (for operators and tests). */
  getProviderRecord(providerId: string): ProviderRecord | null {
    this.flush();
    const row = this.st.providerById.get(providerId);
    if (!row) return null;
    return {
      providerId: row.id,
      installId: row.install_id,
      hostname: row.hostname,
      lastRayNode: row.last_ray_node,
      lastMemoryPercent: row.last_memory_percent,
      recentErrors: row.recent_errors === null ? [] : (JSON.parse(row.recent_errors) as string[]),
      lastSentAt: row.last_sent_at,
    };
  }

  // --- settings ----------------------------------------------------------------------------------------------

  getSetting(key: string): string | null {
    return this.st.settingGet.get(key)?.value ?? null;
  }

  setSetting(key: string, value: string): void {
    this.st.settingSet.run(key, value);
  }
}

/**
 * 'unknown_provider' when there is no row, 'rejected' when the credential is not its current one, `{ revokedAt }`
 * or `{ leftAt }` when it is but the provider no longer takes part.
 */
export function credentialOf(row: HeartbeatView | null, credential: string): CredentialCheck {
  if (!row) return 'unknown_provider';
  if (!hashesEqual(row.credential_hash, hashSecret(credential))) return 'rejected';
  if (row.revoked_at !== null) return { revokedAt: row.revoked_at };
  return row.left_at === null ? 'ok' : { leftAt: row.left_at };
}

function summarize(row: ProviderRow, heartbeatIntervalSeconds: number, now: Date): ProviderSummary {
  const lastState = row.last_state as AgentState | null;
  const lastHeartbeatAt = row.last_heartbeat_at === null ? null : new Date(row.last_heartbeat_at);
  return {
    providerId: row.id,
    hostname: row.hostname,
    ipAddress: row.ip_address,
    cpuCores: row.cpu_cores,
    memoryBytes: row.memory_bytes,
    limits: { cpus: row.limit_cpus, memoryBytes: row.limit_memory_bytes },
    versions: { agent: row.version_agent, ray: row.version_ray, python: row.version_python },
    registeredAt: row.registered_at,
    registrations: row.registrations,
    lastHeartbeatAt: row.last_heartbeat_at,
    heartbeats: row.heartbeats,
    lastState,
    activeTasks: row.active_tasks,
    cpuPercent: row.last_cpu_percent,
    memoryBytesUsed: row.last_memory_bytes,
    health: row.left_at !== null ? 'left' : deriveHealth(lastHeartbeatAt, lastState, heartbeatIntervalSeconds, now),
    revokedAt: row.revoked_at,
    leftAt: row.left_at,
    overlayAddress: row.overlay_address,
    tunnel: row.tunnel_report === null ? null : (JSON.parse(row.tunnel_report) as TunnelReport),
    gatewayPeer: row.gateway_peer === null ? null : (JSON.parse(row.gateway_peer) as ProviderSummary['gatewayPeer']),
  };
}
