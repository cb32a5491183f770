import type { Logger } from 'pino';
import type { GatewayOptions } from './cluster-access.js';
import { createLogger } from './logger.js';
import { defaultRateLimits, type RateLimits } from './rate-limits.js';
import { buildServer, type ManagerServer } from './server.js';
import { Store } from './store.js';

export const HEARTBEAT_INTERVAL_SETTING = 'heartbeat_interval_seconds';
/** Accepted heartbeats are written once a second, in batches (see StoreOptions.heartbeatFlushMs). */
export const HEARTBEAT_FLUSH_MS = 1000;

export interface ServeConfig {
  db: string;
  tls: { cert: Buffer; key: Buffer };
  host: string;
  port: number;
  heartbeatIntervalSeconds: number;
  /** Request limits; the defaults for the interval when not given. */
  rateLimits?: RateLimits;
  enrollmentToken?: string | undefined;
  adminToken?: string | undefined;
  /** Absent: no gateway, every provider joins directly. */
  gateway?: GatewayOptions | undefined;
  /** The token the Ray head was started with; read once, never logged. */
  rayAuthToken?: string | undefined;
  logger?: Logger;
}

export interface RunningManager {
  app: ManagerServer;
  store: Store;
  url: string;
  /** Stops accepting requests, lets in-flight ones finish, closes the database. */
  close(): Promise<void>;
}

/** Opens the database, seeds the tokens given in files, and starts the HTTPS server. */
export async function startManager(config: ServeConfig): Promise<RunningManager> {
  const logger = config.logger ?? createLogger();
  const rateLimits = config.rateLimits ?? defaultRateLimits(config.heartbeatIntervalSeconds);
  const store = new Store(config.db, { heartbeatFlushMs: HEARTBEAT_FLUSH_MS });
  let app: ManagerServer | undefined;
  try {
    store.setSetting(HEARTBEAT_INTERVAL_SETTING, String(config.heartbeatIntervalSeconds));
    if (config.enrollmentToken !== undefined) {
      const seeded = store.ensureEnrollmentToken(config.enrollmentToken, 'from --enrollment-token-file');
      const log = seeded.status === 'active' ? logger.info.bind(logger) : logger.warn.bind(logger);
      log(
        { enrollmentTokenId: seeded.id, created: seeded.created, status: seeded.status },
        seeded.status === 'active'
          ? 'enrollment token from file is ready'
          : `enrollment token from file is ${seeded.status}; registrations with it will be rejected`,
      );
    }
    if (config.adminToken !== undefined) {
      const seeded = store.ensureAdminToken(config.adminToken, 'from --admin-token-file');
      logger.info({ adminTokenId: seeded.id, created: seeded.created }, 'admin token from file is ready');
    }
    app = buildServer({
      store,
      tls: config.tls,
      heartbeatIntervalSeconds: config.heartbeatIntervalSeconds,
      rateLimits,
      gateway: config.gateway,
      rayAuthToken: config.rayAuthToken,
      logger,
    });
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await app?.close().catch(() => undefined);
    store.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const url = `https://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  const { gateway } = config;
  logger.info(
    {
      url,
      db: config.db,
      heartbeatIntervalSeconds: config.heartbeatIntervalSeconds,
      rateLimits,
      // Whether secrets are configured, never the secrets. `overlay: null`: no gateway, providers join directly.
      overlay:
        gateway === undefined
          ? null
          : {
              network: gateway.network.cidr,
              gatewayAddress: gateway.network.gatewayAddress,
              gcsAddress: `${gateway.network.gatewayAddress}:${gateway.gcsPort}`,
            },
      rayTokenAuth: config.rayAuthToken !== undefined,
    },
    'manager listening',
  );
  const running = app;
  return {
    app: running,
    store,
    url,
    async close() {
      try {
        await running.close();
      } finally {
        store.close();
      }
    },
  };
}
