import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { DEFAULT_OVERLAY_NETWORK, Ipv4Cidr, RayAuthToken } from '@ray-agent/protocol';
import { type OverlayNetwork, parseOverlayNetwork } from './overlay-network.js';
import {
  defaultRateLimits,
  MIN_GATEWAY_SYNCS_PER_MINUTE,
  minHeartbeatsPerMinute,
  type RateLimit,
  type RateLimits,
  windowPhrase,
} from './rate-limits.js';

/** A bad command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

function fail(option: string, problem: string, example: string): never {
  throw new UsageError(`${option}: ${problem}, e.g. ${option} ${example}`);
}

function reason(err: unknown): string {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.message : String(err);
}

const DB_EXAMPLE = './manager.db';

/** `--db`: the SQLite file. With mustExist, the file must already be there (commands that only read). */
export function dbPath(value: string | undefined, mustExist: boolean): string {
  if (value === undefined || value.trim() === '') fail('--db', 'required: the SQLite database file', DB_EXAMPLE);
  const file = resolve(value);
  if (mustExist) {
    if (!existsSync(file)) fail('--db', `no database at ${file} (create one with "token create")`, DB_EXAMPLE);
    if (!statSync(file).isFile()) fail('--db', `${file} is not a file`, DB_EXAMPLE);
    return file;
  }
  const dir = dirname(file);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) fail('--db', `directory ${dir} does not exist`, DB_EXAMPLE);
  if (existsSync(file) && !statSync(file).isFile()) fail('--db', `${file} is not a file`, DB_EXAMPLE);
  return file;
}

/** A file option that must be readable; returns its contents. */
export function readableFile(option: string, value: string | undefined, example: string): Buffer {
  if (value === undefined || value.trim() === '') fail(option, 'required', example);
  try {
    return readFileSync(resolve(value));
  } catch (err) {
    return fail(option, `cannot read ${value} (${reason(err)})`, example);
  }
}

/** `--cert`/`--key`: PEM files that must form a usable TLS identity. */
export function tlsFiles(cert: string | undefined, key: string | undefined): { cert: Buffer; key: Buffer } {
  const certPem = readableFile('--cert', cert, '/etc/ray-agent-manager/tls/server.crt');
  const keyPem = readableFile('--key', key, '/etc/ray-agent-manager/tls/server.key');
  try {
    createSecureContext({ cert: certPem, key: keyPem });
  } catch (err) {
    fail(
      '--key',
      `${key} and --cert ${cert} are not a matching PEM key and certificate (${reason(err)})`,
      '/etc/ray-agent-manager/tls/server.key',
    );
  }
  return { cert: certPem, key: keyPem };
}

export function integer(option: string, value: string | undefined, min: number, max: number, example: string): number {
  if (value === undefined || !/^\d+$/.test(value.trim())) fail(option, `must be an integer ${min}-${max}`, example);
  const n = Number(value.trim());
  if (!Number.isSafeInteger(n) || n < min || n > max) fail(option, `must be an integer ${min}-${max}`, example);
  return n;
}

export function port(value: string | undefined): number {
  return integer('--port', value, 1, 65535, '8443');
}

export function heartbeatInterval(value: string | undefined): number {
  return integer('--heartbeat-interval', value, 1, 3600, '10');
}

export function host(value: string | undefined): string {
  if (value === undefined || !/^[A-Za-z0-9.:[\]-]+$/.test(value)) {
    fail('--host', 'must be an address or host name to listen on', '0.0.0.0');
  }
  return value;
}

/**
 * `--enrollment-token-file`/`--admin-token-file`/`--gateway-token-file`: a file holding one token (surrounding
 * whitespace ignored).
 */
export function tokenFile(option: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const example = `/run/secrets/${option.replace(/^--/, '').replace(/-file$/, '')}`;
  const token = readableFile(option, value, example).toString('utf8').trim();
  if (token === '') fail(option, `${value} is empty; it must hold one token`, example);
  if (/\s/.test(token)) fail(option, `${value} must hold a single token without spaces or line breaks`, example);
  if (token.length < 16) fail(option, `the token in ${value} is shorter than 16 characters`, example);
  if (token.length > 512) fail(option, `the token in ${value} is longer than 512 characters`, example);
  return token;
}

/** `--ray-auth-token-file`: the token the head was started with (Ray's `RAY_AUTH_MODE=token`), read once. */
export function rayAuthTokenFile(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const option = '--ray-auth-token-file';
  const example = '/run/secrets/ray-auth-token';
  const token = readableFile(option, value, example).toString('utf8').trim();
  const parsed = RayAuthToken.safeParse(token);
  if (!parsed.success) {
    const problem = parsed.error.issues[0]?.message ?? 'not a token';
    fail(option, `${value} must hold the one token the Ray head was started with (${problem})`, example);
  }
  return parsed.data;
}

/** `--overlay-network`: the network the gateway and the providers' overlay addresses come from. */
export function overlayNetwork(value: string | undefined): OverlayNetwork {
  const option = '--overlay-network';
  const cidr = value?.trim() ?? DEFAULT_OVERLAY_NETWORK;
  const parsed = Ipv4Cidr.safeParse(cidr);
  if (!parsed.success) fail(option, `${cidr} is not an IPv4 network in CIDR form`, DEFAULT_OVERLAY_NETWORK);
  const network = parseOverlayNetwork(parsed.data);
  if ('problem' in network) fail(option, network.problem, DEFAULT_OVERLAY_NETWORK);
  return network;
}

/** `--overlay-gcs-port`: the head's GCS port on the gateway's overlay address. */
export function overlayGcsPort(value: string | undefined): number {
  return integer('--overlay-gcs-port', value, 1, 65535, '6379');
}

export function label(value: string | undefined): string {
  if (value === undefined) return '';
  if (value.length > 200 || /[\r\n]/.test(value))
    fail('--label', 'must be one line of at most 200 characters', 'laptop-fleet');
  return value;
}

export function expiresInHours(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 87_600) {
    fail('--expires-in-hours', 'must be a positive number of hours up to 87600', '24');
  }
  return n;
}

export function tokenId(value: string | undefined): number {
  return integer('--id', value, 1, Number.MAX_SAFE_INTEGER, '3');
}

/** The rate-limit flags of `serve`, as given (undefined: the default). */
export interface RateLimitFlags {
  registerLimitPerClient?: string | undefined;
  registerLimitPerInstall?: string | undefined;
  heartbeatLimitPerClient?: string | undefined;
  heartbeatLimitPerProvider?: string | undefined;
  gatewaySyncLimitPerClient?: string | undefined;
}

/** The fewest registrations a limit may allow: the first, a retry after a lost answer, one after losing the provider. */
const MIN_REGISTRATIONS = 3;
const MAX_LIMIT = 1_000_000;

function limitFlag(
  option: string,
  value: string | undefined,
  least: number,
  fallback: RateLimit,
  context = '',
  who = 'a correct agent',
): RateLimit {
  if (value === undefined) return fallback;
  const example = String(fallback.max);
  const n = integer(option, value, 0, MAX_LIMIT, example);
  const rate = `${n} ${windowPhrase(fallback.windowSeconds)}${context}`;
  if (n !== 0 && n < least)
    fail(option, `${rate} is fewer than ${who} may need (at least ${least}; 0 turns the limit off)`, example);
  return { ...fallback, max: n };
}

/** `--register-limit-per-client` and the four others: requests per window, 0 for no limit. */
export function rateLimits(flags: RateLimitFlags, heartbeatIntervalSeconds: number): RateLimits {
  const defaults = defaultRateLimits(heartbeatIntervalSeconds);
  const beats = minHeartbeatsPerMinute(heartbeatIntervalSeconds);
  const at = ` at --heartbeat-interval ${heartbeatIntervalSeconds}`;
  return {
    registerPerClient: limitFlag(
      '--register-limit-per-client',
      flags.registerLimitPerClient,
      MIN_REGISTRATIONS,
      defaults.registerPerClient,
    ),
    registerPerInstall: limitFlag(
      '--register-limit-per-install',
      flags.registerLimitPerInstall,
      MIN_REGISTRATIONS,
      defaults.registerPerInstall,
    ),
    heartbeatPerClient: limitFlag(
      '--heartbeat-limit-per-client',
      flags.heartbeatLimitPerClient,
      beats,
      defaults.heartbeatPerClient,
      at,
    ),
    heartbeatPerProvider: limitFlag(
      '--heartbeat-limit-per-provider',
      flags.heartbeatLimitPerProvider,
      beats,
      defaults.heartbeatPerProvider,
      at,
    ),
    gatewaySyncPerClient: limitFlag(
      '--gateway-sync-limit-per-client',
      flags.gatewaySyncLimitPerClient,
      MIN_GATEWAY_SYNCS_PER_MINUTE,
      defaults.gatewaySyncPerClient,
      '',
      'a correct gateway',
    ),
  };
}
