import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  GATEWAY_DEFAULT_PORT,
  Ipv4Cidr,
  OVERLAY_INTERFACE,
  TUNNEL_PRIVATE_KEY_FILE,
  TUNNEL_PUBLIC_KEY_FILE,
  UdpEndpoint,
} from '@ray-agent/protocol';
import { Command, CommanderError } from 'commander';
import { Commands } from './commands.js';
import { GatewayClient } from './gateway-client.js';
import { GatewayLoop, GatewayStartError } from './gateway-loop.js';
import { createLogger } from './log.js';

const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;

class UsageError extends Error {}

export interface GatewaySettings {
  manager: URL;
  token: string;
  endpoint: string;
  listenPort: number;
  dataDir: string;
  routes: string[];
  managerCaFile: string | undefined;
}

interface RawOptions {
  manager?: string;
  tokenFile?: string;
  endpoint?: string;
  listenPort?: string;
  dataDir?: string;
  route?: string[];
  managerCaFile?: string;
}

/** Every flag checked where it enters, each message naming the flag, the problem and a good example. */
export function gatewaySettings(raw: RawOptions): GatewaySettings {
  const managerExample = 'e.g. --manager https://manager.my-cluster.org:8443';
  if (!raw.manager) throw new UsageError(`--manager is required: the manager's HTTPS URL, ${managerExample}`);
  let manager: URL;
  try {
    manager = new URL(raw.manager);
  } catch {
    throw new UsageError(`--manager: ${JSON.stringify(raw.manager)} is not a URL, ${managerExample}`);
  }
  if (manager.protocol !== 'https:')
    throw new UsageError(`--manager: must be an https:// URL (the gateway token travels in it), ${managerExample}`);
  if (!raw.tokenFile)
    throw new UsageError(
      '--token-file is required: the file holding the gateway token, e.g. --token-file /run/secrets/gateway-token',
    );
  const token = readText('--token-file', raw.tokenFile, 'the gateway token the manager was started with').trim();
  if (!/^[\x21-\x7e]{16,512}$/.test(token))
    throw new UsageError(
      `--token-file: ${raw.tokenFile} must hold one token of 16 to 512 printable characters (the manager's serve --gateway-token-file)`,
    );
  if (!raw.endpoint)
    throw new UsageError(
      '--endpoint is required: HOST:PORT providers dial over UDP, e.g. --endpoint gateway.my-cluster.org:51820',
    );
  const endpoint = UdpEndpoint.safeParse(raw.endpoint);
  const endpointPort = Number(raw.endpoint.slice(raw.endpoint.lastIndexOf(':') + 1));
  if (!endpoint.success || endpointPort < 1 || endpointPort > 65535)
    throw new UsageError(
      `--endpoint: ${JSON.stringify(raw.endpoint)} is not HOST:PORT, e.g. --endpoint gateway.my-cluster.org:51820`,
    );
  const listenPortText = raw.listenPort ?? String(GATEWAY_DEFAULT_PORT);
  const listenPort = Number(listenPortText);
  if (!/^\d+$/.test(listenPortText) || listenPort < 1 || listenPort > 65535)
    throw new UsageError(
      `--listen-port: ${JSON.stringify(listenPortText)} is not a UDP port, e.g. --listen-port ${GATEWAY_DEFAULT_PORT}`,
    );
  if (!raw.dataDir)
    throw new UsageError(
      '--data-dir is required: a directory on a volume that keeps the key pair, e.g. --data-dir /var/lib/ray-agent-gateway',
    );
  const routes = raw.route ?? [];
  for (const route of routes)
    if (!Ipv4Cidr.safeParse(route).success)
      throw new UsageError(`--route: ${JSON.stringify(route)} is not an IPv4 network, e.g. --route 10.20.0.0/16`);
  if (routes.length > 30) throw new UsageError(`--route: at most 30 routes, got ${routes.length}`);
  if (raw.managerCaFile !== undefined)
    readText('--manager-ca-file', raw.managerCaFile, "the manager's CA certificate, PEM");
  return {
    manager,
    token,
    endpoint: raw.endpoint,
    listenPort,
    dataDir: raw.dataDir,
    routes,
    managerCaFile: raw.managerCaFile,
  };
}

function readText(flag: string, path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(
      `${flag}: cannot read ${path} (${(error as NodeJS.ErrnoException).code}); it should hold ${what}`,
    );
  }
}

/** Runs the gateway until SIGTERM/SIGINT, then removes its interface and forwarding rules. */
async function runGateway(settings: GatewaySettings): Promise<void> {
  const logger = createLogger('ray-agent-gateway');
  mkdirSync(settings.dataDir, { recursive: true, mode: 0o700 });
  const client = new GatewayClient(settings.manager, settings.token, settings.managerCaFile);
  const loop = new GatewayLoop({
    manager: client,
    endpoint: settings.endpoint,
    listenPort: settings.listenPort,
    routes: settings.routes,
    iface: OVERLAY_INTERFACE,
    commands: new Commands(),
    logger,
    privateKeyFile: join(settings.dataDir, baseName(TUNNEL_PRIVATE_KEY_FILE)),
    publicKeyFile: join(settings.dataDir, baseName(TUNNEL_PUBLIC_KEY_FILE)),
  });
  await loop.start();
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info({ signal }, 'gateway stopping');
  await loop.stop();
  await client.close();
  logger.info('gateway stopped');
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The `gateway` subcommand, for a CLI that has others (the manager's) or on its own (`runGatewayCli`). */
export function gatewayCommand(): Command {
  return new Command('gateway')
    .description(
      "Run the overlay's WireGuard gateway: admits the providers the manager registered, forwards to the cluster.",
    )
    .option('--manager <url>', "the manager's HTTPS URL")
    .option('--token-file <file>', "file holding the gateway token (the manager's serve --gateway-token-file)")
    .option('--endpoint <host:port>', 'HOST:PORT providers dial over UDP (this gateway as the internet sees it)')
    .option('--listen-port <port>', 'UDP port to listen on', String(GATEWAY_DEFAULT_PORT))
    .option('--data-dir <dir>', 'directory for the key pair (a volume: the key survives restarts)')
    .option(
      '--route <cidr>',
      'a cluster network providers may reach (repeatable)',
      (value, all: string[]) => [...all, value],
      [],
    )
    .option('--manager-ca-file <file>', "the manager's CA certificate, when it is private (verification is always on)")
    .exitOverride()
    .action(async (raw: RawOptions) => {
      let settings: GatewaySettings;
      try {
        settings = gatewaySettings(raw);
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        console.error(error.message);
        process.exitCode = EXIT_USAGE;
        return;
      }
      try {
        await runGateway(settings);
      } catch (error) {
        console.error(`gateway: ${(error as Error).message}`);
        process.exitCode = error instanceof GatewayStartError ? EXIT_USAGE : EXIT_FAILURE;
      }
    });
}

/** `ray-agent-gateway [flags]`: the gateway's flags without a parent command. */
export async function runGatewayCli(argv: string[]): Promise<void> {
  try {
    await gatewayCommand().name('ray-agent-gateway').parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    process.exitCode = error.code === 'commander.helpDisplayed' ? 0 : EXIT_USAGE;
  }
}
