import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ErrorBody, RegisterResponse } from '@ray-agent/protocol';
import { expect } from 'vitest';
import { createLogger } from '../src/logger.js';
import { validateAgainstOpenApi } from '../src/openapi-check.js';
import { type OverlayNetwork, parseOverlayNetwork } from '../src/overlay-network.js';
import type { RateLimits } from '../src/rate-limits.js';
import { buildServer } from '../src/server.js';
import { Store } from '../src/store.js';

export function tempDir(prefix = 'manager-test-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** A throwaway CA and a server certificate for localhost/127.0.0.1 signed by it, made with the openssl CLI. */
export function makeTls(dir: string): TestTls {
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('ca.key'));
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    f('ca.key'),
    '-sha256',
    '-days',
    '2',
    '-subj',
    '/CN=manager test CA',
    '-out',
    f('ca.crt'),
  );
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('server.key'));
  openssl('req', '-new', '-key', f('server.key'), '-subj', '/CN=localhost', '-out', f('server.csr'));
  const ext = f('server.ext');
  execFileSync('sh', [
    '-c',
    `printf '%s\\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' 'extendedKeyUsage=serverAuth' > '${ext}'`,
  ]);
  openssl(
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-sha256',
    '-extfile',
    ext,
    '-out',
    f('server.crt'),
  );
  return {
    caFile: f('ca.crt'),
    certFile: f('server.crt'),
    keyFile: f('server.key'),
    ca: readFileSync(f('ca.crt')),
    cert: readFileSync(f('server.crt')),
    key: readFileSync(f('server.key')),
  };
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: unknown;
}

/**
 * One HTTPS request that verifies the server against `ca`. `localAddress` (another loopback address, such as
 * 127.0.0.2) makes the request come from another client as the server sees it.
 */
export function httpsCall(
  url: string,
  options: {
    method?: string;
    ca: Buffer;
    headers?: Record<string, string>;
    body?: string | Buffer;
    localAddress?: string;
  },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: options.method ?? 'GET',
        ca: options.ca,
        headers: options.headers,
        agent: false,
        // The server listens on 127.0.0.1: an IPv4 source address needs an IPv4 destination.
        ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress, family: 4 }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text === '' ? undefined : JSON.parse(text);
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Collects every log line written by the server. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.lines.push(
      ...chunk
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== ''),
    );
    done();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

/** Limits off, for tests that replay minutes of traffic on the injected clock (the limiter counts real time). */
export const NO_RATE_LIMITS: RateLimits = {
  registerPerClient: { max: 0, windowSeconds: 60 },
  registerPerInstall: { max: 0, windowSeconds: 3600 },
  heartbeatPerClient: { max: 0, windowSeconds: 60 },
  heartbeatPerProvider: { max: 0, windowSeconds: 60 },
  gatewaySyncPerClient: { max: 0, windowSeconds: 60 },
};

export const ENROLLMENT_TOKEN = 'test-enrollment-token-0123456789abcdef';
export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
export const GATEWAY_TOKEN = 'test-gateway-token-0123456789abcdef';

/** A real WireGuard public key: the X25519 public key of a fresh pair, base64, as `wg pubkey` prints it. */
export function wireguardKey(): string {
  const der = generateKeyPairSync('x25519').publicKey.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32).toString('base64');
}

export function overlayNetwork(cidr: string): OverlayNetwork {
  const network = parseOverlayNetwork(cidr);
  if ('problem' in network) throw new Error(network.problem);
  return network;
}

export interface TestServer {
  url: string;
  store: Store;
  tls: TestTls;
  logs: LogCapture;
  dbFile: string;
  /** Problems found checking responses (and valid requests) against manager/openapi.json. */
  openApiProblems: string[];
  clock: { now: Date };
  call(
    method: string,
    path: string,
    options?: {
      token?: string;
      body?: unknown;
      rawBody?: string;
      contentType?: string | null;
      checkRequest?: boolean;
      localAddress?: string;
    },
  ): Promise<HttpResult>;
  close(): Promise<void>;
}

/** The real server, in-process, with real TLS on 127.0.0.1 and an ephemeral port. */
export async function startTestServer(
  options: {
    heartbeatIntervalSeconds?: number;
    dir?: string;
    rateLimits?: RateLimits;
    /** A gateway with GATEWAY_TOKEN on this overlay network (CIDR); none when absent. */
    overlayNetwork?: string;
    gcsPort?: number;
    rayAuthToken?: string;
  } = {},
): Promise<TestServer> {
  const tmp = options.dir === undefined ? tempDir() : { dir: options.dir, remove: () => undefined };
  const tls = makeTls(tmp.dir);
  const dbFile = join(tmp.dir, 'manager.db');
  // Batched, as `serve` runs it: every API test goes through the batched heartbeat path.
  const store = new Store(dbFile, { heartbeatFlushMs: 1000 });
  store.ensureEnrollmentToken(ENROLLMENT_TOKEN, 'test');
  store.ensureAdminToken(ADMIN_TOKEN, 'test');
  const logs = new LogCapture();
  const clock = { now: new Date() };
  const app = buildServer({
    store,
    tls: { cert: tls.cert, key: tls.key },
    heartbeatIntervalSeconds: options.heartbeatIntervalSeconds ?? 10,
    ...(options.rateLimits === undefined ? {} : { rateLimits: options.rateLimits }),
    logger: createLogger({ destination: logs }),
    now: () => clock.now,
    ...(options.overlayNetwork === undefined
      ? {}
      : {
          gateway: {
            token: GATEWAY_TOKEN,
            network: overlayNetwork(options.overlayNetwork),
            gcsPort: options.gcsPort ?? 6379,
          },
        }),
    ...(options.rayAuthToken === undefined ? {} : { rayAuthToken: options.rayAuthToken }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const url = `https://localhost:${address.port}`;
  const openApiProblems: string[] = [];
  return {
    url,
    store,
    tls,
    logs,
    dbFile,
    openApiProblems,
    clock,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = {};
      if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
      let body: string | undefined;
      if (o.rawBody !== undefined) body = o.rawBody;
      else if (o.body !== undefined) body = JSON.stringify(o.body);
      if (body !== undefined && o.contentType !== null) headers['content-type'] = o.contentType ?? 'application/json';
      if (o.checkRequest && o.body !== undefined) {
        openApiProblems.push(...validateAgainstOpenApi(path, method, 'request', undefined, o.body));
      }
      const res = await httpsCall(`${url}${path}`, {
        method,
        ca: tls.ca,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
      });
      const ct = String(res.headers['content-type'] ?? '');
      if (!ct.startsWith('application/json'))
        openApiProblems.push(`${method} ${path} ${res.status}: content-type ${ct}`);
      const problems = validateAgainstOpenApi(path, method, 'response', res.status, res.body, res.headers);
      if (problems.length === 1 && problems[0]?.startsWith('no path in the OpenAPI document')) {
        // Undocumented routes must still answer with an ErrorBody.
        if (!ErrorBody.safeParse(res.body).success) openApiProblems.push(`${method} ${path}: not an ErrorBody`);
      } else {
        openApiProblems.push(...problems);
      }
      return res;
    },
    async close() {
      await app.close();
      store.close();
      tmp.remove();
    },
  };
}

export function registerBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    installId: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
    hostname: 'worker-1.example',
    cpuCores: 8,
    memoryBytes: 16 * 1024 ** 3,
    ipAddress: '192.0.2.10',
    versions: { agent: '0.1.0', ray: '2.40.0', python: '3.11.7' },
    limits: { cpus: 4, memoryBytes: 8 * 1024 ** 3 },
    ...overrides,
  };
}

/** One agent process; a second process with the same credentials has another. */
export const BOOT_ID = 'a3c5e7f9-1b2d-4f6a-8c0e-2d4f6a8c0e1b';

export function heartbeatBody(providerId: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    providerId,
    bootId: BOOT_ID,
    state: 'contributing',
    rayNode: 'joined',
    cpuPercent: 12.5,
    memoryBytes: 512 * 1024 ** 2,
    memoryPercent: 6.25,
    activeTasks: 3,
    recentErrors: [],
    sentAt: new Date().toISOString(),
    ...overrides,
  };
}

/** Registers through `s` with the enrollment token; a `localAddress` makes it another client. */
export function postRegister(
  s: TestServer,
  overrides: Record<string, unknown> = {},
  localAddress?: string,
): Promise<HttpResult> {
  return s.call('POST', '/api/register', {
    token: ENROLLMENT_TOKEN,
    body: registerBody(overrides),
    ...(localAddress === undefined ? {} : { localAddress }),
  });
}

/** One heartbeat of the registered provider `reg`, proving its credential. */
export function postHeartbeat(
  s: TestServer,
  reg: RegisterResponse,
  overrides: Record<string, unknown> = {},
  localAddress?: string,
): Promise<HttpResult> {
  return s.call('POST', '/api/heartbeat', {
    token: reg.credential,
    body: heartbeatBody(reg.providerId, overrides),
    ...(localAddress === undefined ? {} : { localAddress }),
  });
}

/** The answer of a registration that must have worked. */
export function registered(res: HttpResult): RegisterResponse {
  expect(res.status, res.text).toBe(200);
  return RegisterResponse.parse(res.body);
}
