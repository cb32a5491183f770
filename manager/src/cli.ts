import { DEFAULT_OVERLAY_NETWORK } from '@ray-agent/protocol';
import { gatewayCommand } from '@ray-agent/tunnel/gateway-cli';
import { Command, CommanderError } from 'commander';
import { createLogger } from './logger.js';
import * as opt from './options.js';
import { HEARTBEAT_INTERVAL_SETTING, startManager } from './serve.js';
import { DEFAULT_HEARTBEAT_INTERVAL_SECONDS } from './server.js';
import { Store } from './store.js';

/** Exit codes: 0 ok, 1 runtime failure, 2 bad command line. */
const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function withStore<T>(file: string, mustExist: boolean, fn: (store: Store) => T): T {
  let store: Store;
  try {
    store = new Store(file, { mustExist });
  } catch (err) {
    throw new opt.UsageError(
      `--db: cannot open ${file} (${err instanceof Error ? err.message : String(err)}), e.g. --db ./manager.db`,
    );
  }
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

interface ServeOptions {
  db?: string;
  cert?: string;
  key?: string;
  host?: string;
  port?: string;
  heartbeatInterval?: string;
  enrollmentTokenFile?: string;
  adminTokenFile?: string;
  registerLimitPerClient?: string;
  registerLimitPerInstall?: string;
  heartbeatLimitPerClient?: string;
  heartbeatLimitPerProvider?: string;
  gatewaySyncLimitPerClient?: string;
  gatewayTokenFile?: string;
  overlayNetwork?: string;
  overlayGcsPort?: string;
  rayAuthTokenFile?: string;
}

async function serve(options: ServeOptions): Promise<void> {
  // Plain values first, then the files they point at.
  const host = opt.host(options.host);
  const port = opt.port(options.port);
  const heartbeatIntervalSeconds = opt.heartbeatInterval(options.heartbeatInterval);
  const rateLimits = opt.rateLimits(options, heartbeatIntervalSeconds);
  const network = opt.overlayNetwork(options.overlayNetwork);
  const gcsPort = opt.overlayGcsPort(options.overlayGcsPort);
  const gatewayToken = opt.tokenFile('--gateway-token-file', options.gatewayTokenFile);
  const config = {
    host,
    port,
    heartbeatIntervalSeconds,
    rateLimits,
    db: opt.dbPath(options.db, false),
    tls: opt.tlsFiles(options.cert, options.key),
    enrollmentToken: opt.tokenFile('--enrollment-token-file', options.enrollmentTokenFile),
    adminToken: opt.tokenFile('--admin-token-file', options.adminTokenFile),
    gateway: gatewayToken === undefined ? undefined : { token: gatewayToken, network, gcsPort },
    rayAuthToken: opt.rayAuthTokenFile(options.rayAuthTokenFile),
  };
  const logger = createLogger();
  let manager: Awaited<ReturnType<typeof startManager>>;
  try {
    manager = await startManager({ ...config, logger });
  } catch (err) {
    const code = err && typeof err === 'object' && 'code' in err ? String(err.code) : undefined;
    logger.fatal(
      { err: { message: err instanceof Error ? err.message : String(err), code } },
      'manager failed to start',
    );
    if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' || code === 'EACCES') {
      throw new opt.UsageError(`--port: cannot listen on ${config.host}:${config.port} (${code}), e.g. --port 8443`);
    }
    throw err;
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('shutdown took longer than 10 s; exiting');
      process.exit(EXIT_FAILURE);
    }, 10_000);
    force.unref();
    manager.close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err: { message: err instanceof Error ? err.message : String(err) } }, 'shutdown failed');
        process.exit(EXIT_FAILURE);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/** The interval given, else the one the server last used, else the default. */
function storedInterval(store: Store, given: number | undefined): number {
  const stored = Number(store.getSetting(HEARTBEAT_INTERVAL_SETTING));
  return given ?? (Number.isSafeInteger(stored) && stored > 0 ? stored : DEFAULT_HEARTBEAT_INTERVAL_SECONDS);
}

function program(): Command {
  const root = new Command('ray-agent-manager')
    .description(
      'Reference manager for ray-agent providers: enrollment, registration, heartbeats, listing, revocation, and the overlay gateway.',
    )
    .exitOverride()
    .showSuggestionAfterError(true);

  root
    .command('serve')
    .description('Run the HTTPS provider API.')
    .option('--db <file>', 'SQLite database file (created if missing)')
    .option('--cert <file>', 'TLS certificate chain, PEM')
    .option('--key <file>', 'TLS private key, PEM')
    .option('--host <address>', 'address to listen on', '0.0.0.0')
    .option('--port <port>', 'port to listen on', '8443')
    .option(
      '--heartbeat-interval <seconds>',
      'heartbeat interval told to agents',
      String(DEFAULT_HEARTBEAT_INTERVAL_SECONDS),
    )
    .option('--enrollment-token-file <file>', 'file holding an enrollment token to accept (stored hashed)')
    .option('--admin-token-file <file>', 'file holding the admin token for GET /api/providers (stored hashed)')
    .option('--register-limit-per-client <n>', 'registrations a minute from one address (default 30; 0: no limit)')
    .option('--register-limit-per-install <n>', 'registrations an hour of one installId (default 10; 0: no limit)')
    .option('--heartbeat-limit-per-client <n>', 'heartbeats a minute from one address (default 1200; 0: no limit)')
    .option(
      '--heartbeat-limit-per-provider <n>',
      'heartbeats a minute of one provider (default 60, or 4 per interval if more; 0: no limit)',
    )
    .option('--gateway-sync-limit-per-client <n>', 'gateway syncs a minute from one address (default 300; 0: no limit)')
    .option(
      '--gateway-token-file <file>',
      'file holding the WireGuard gateway token; enables POST /api/gateway/sync (without it: no overlay, providers join directly)',
    )
    .option('--overlay-network <cidr>', 'the overlay network; the gateway is its first host', DEFAULT_OVERLAY_NETWORK)
    .option('--overlay-gcs-port <port>', "the head's GCS port at the gateway's overlay address", '6379')
    .option(
      '--ray-auth-token-file <file>',
      'file holding the token the Ray head was started with (RAY_AUTH_MODE=token); handed to registered providers',
    )
    .action(serve);

  // The overlay's WireGuard gateway ships in the manager's image: `ray-agent-manager gateway ...`.
  root.addCommand(gatewayCommand());

  const token = root.command('token').description('Manage enrollment tokens.');
  token
    .command('create')
    .description('Create an enrollment token and print it; it is shown this once only.')
    .option('--db <file>', 'SQLite database file (created if missing)')
    .option('--label <text>', 'a note to tell tokens apart')
    .option('--expires-in-hours <hours>', 'make the token expire')
    .action((o: { db?: string; label?: string; expiresInHours?: string }) => {
      const db = opt.dbPath(o.db, false);
      const label = opt.label(o.label);
      const expiresInHours = opt.expiresInHours(o.expiresInHours);
      const created = withStore(db, false, (store) => store.createEnrollmentToken({ label, expiresInHours }));
      out(created.token);
      console.error(
        `created enrollment token id=${created.id}${label ? ` label=${JSON.stringify(label)}` : ''} expires=${created.expiresAt ?? 'never'}`,
      );
    });
  token
    .command('revoke')
    .description('Revoke an enrollment token; registrations with it are then rejected.')
    .option('--db <file>', 'SQLite database file')
    .option('--id <id>', 'token id, as shown by "token list"')
    .action((o: { db?: string; id?: string }) => {
      const db = opt.dbPath(o.db, true);
      const id = opt.tokenId(o.id);
      const found = withStore(db, true, (store) => store.revokeEnrollmentToken(id));
      if (!found) {
        console.error(`no enrollment token with id ${id} (see "token list")`);
        process.exitCode = EXIT_FAILURE;
        return;
      }
      console.error(`revoked enrollment token id=${id}`);
    });
  token
    .command('list')
    .description('List enrollment tokens as JSON (never the tokens themselves).')
    .option('--db <file>', 'SQLite database file')
    .action((o: { db?: string }) => {
      const db = opt.dbPath(o.db, true);
      out(JSON.stringify({ tokens: withStore(db, true, (store) => store.listEnrollmentTokens()) }, null, 2));
    });

  const providers = root.command('providers').description('List and revoke providers, working on the database.');
  // `providers --db FILE` alone lists, as before `revoke` existed.
  providers
    .command('list', { isDefault: true })
    .description("Print the provider list as JSON (health, overlay address, tunnel state, the gateway's view).")
    .option('--db <file>', 'SQLite database file')
    .option('--heartbeat-interval <seconds>', 'interval used to derive health (default: the one the server last used)')
    .action((o: { db?: string; heartbeatInterval?: string }) => {
      const db = opt.dbPath(o.db, true);
      const given = o.heartbeatInterval === undefined ? undefined : opt.heartbeatInterval(o.heartbeatInterval);
      const list = withStore(db, true, (store) => store.listProviders(storedInterval(store, given)));
      out(JSON.stringify({ providers: list }, null, 2));
    });
  providers
    .command('revoke')
    .description(
      'Revoke a provider: its heartbeats are refused, the gateway drops its peer, and its installId cannot ' +
        'register again (letting the machine in again takes a new state volume).',
    )
    .argument('<id>', 'provider id, as shown by "providers list"')
    .option('--db <file>', 'SQLite database file')
    .action((id: string, o: { db?: string }) => {
      const db = opt.dbPath(o.db, true);
      const revoked = withStore(db, true, (store) =>
        store.revokeProvider(id) ? store.getProvider(id, storedInterval(store, undefined)) : null,
      );
      if (revoked === null) {
        console.error(`no provider with id ${id} (see "providers list")`);
        process.exitCode = EXIT_FAILURE;
        return;
      }
      console.error(`revoked provider ${id} at ${revoked.revokedAt}`);
    });

  return root;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help).
      process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : EXIT_USAGE;
      return;
    }
    if (err instanceof opt.UsageError) {
      console.error(err.message);
      process.exitCode = EXIT_USAGE;
      return;
    }
    console.error(`ray-agent-manager: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = EXIT_FAILURE;
  }
}

await main(process.argv.slice(2));
