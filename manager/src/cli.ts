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
}

async function serve(options: ServeOptions): Promise<void> {
  // Plain values first, then the files they point at.
  const host = opt.host(options.host);
  const port = opt.port(options.port);
  const heartbeatIntervalSeconds = opt.heartbeatInterval(options.heartbeatInterval);
  const rateLimits = opt.rateLimits(options, heartbeatIntervalSeconds);
  const config = {
    host,
    port,
    heartbeatIntervalSeconds,
    rateLimits,
    db: opt.dbPath(options.db, false),
    tls: opt.tlsFiles(options.cert, options.key),
    enrollmentToken: opt.tokenFile('--enrollment-token-file', options.enrollmentTokenFile),
    adminToken: opt.tokenFile('--admin-token-file', options.adminTokenFile),
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

function program(): Command {
  const root = new Command('ray-agent-manager')
    .description('Reference manager for ray-agent providers: enrollment, registration, heartbeats, listing.')
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
    .action(serve);

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

  root
    .command('providers')
    .description('Print the provider list as JSON, read from the database.')
    .option('--db <file>', 'SQLite database file')
    .option('--heartbeat-interval <seconds>', 'interval used to derive health (default: the one the server last used)')
    .action((o: { db?: string; heartbeatInterval?: string }) => {
      const db = opt.dbPath(o.db, true);
      const given = o.heartbeatInterval === undefined ? undefined : opt.heartbeatInterval(o.heartbeatInterval);
      const providers = withStore(db, true, (store) => {
        const stored = Number(store.getSetting(HEARTBEAT_INTERVAL_SETTING));
        const interval =
          given ?? (Number.isSafeInteger(stored) && stored > 0 ? stored : DEFAULT_HEARTBEAT_INTERVAL_SECONDS);
        return store.listProviders(interval);
      });
      out(JSON.stringify({ providers }, null, 2));
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
