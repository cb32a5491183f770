import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { ManagerServer } from '@ray-agent/manager/server';
import type { Store } from '@ray-agent/manager/store';
import type { HeartbeatRequest, RegisterRequest } from '@ray-agent/protocol';
import { build } from 'esbuild';
import { onTestFinished } from 'vitest';
import { type ManagerEndpoints, parseManagerUrl } from '../src/config/manager-url.js';
import { rayResources } from '../src/limits/ray-resources.js';
import { createLogger } from '../src/log.js';
import type { RayNodeOptions } from '../src/supervisor/ray-node.js';

/** A fresh directory under the OS temp dir, removed when the current test finishes. */
export function tempDir(prefix = 'agent-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Same, for use in beforeAll/afterAll: the caller removes it. */
export function tempDirForSuite(prefix = 'agent-suite-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it, made with the openssl CLI.
 * The CA is written with an explicit config so the result does not depend on the system's openssl.cnf.
 */
export function makeTls(dir: string): TestTls {
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  writeFileSync(
    f('ca.cnf'),
    [
      '[req]',
      'distinguished_name = dn',
      'x509_extensions = v3_ca',
      'prompt = no',
      '[dn]',
      'CN = ray-agent unit test CA',
      '[v3_ca]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  writeFileSync(
    f('server.ext'),
    [
      'basicConstraints = CA:FALSE',
      'keyUsage = critical, digitalSignature',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = IP:127.0.0.1, DNS:localhost',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
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
    '-config',
    f('ca.cnf'),
    '-out',
    f('ca.crt'),
  );
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('server.key'));
  openssl('req', '-new', '-key', f('server.key'), '-subj', '/CN=localhost', '-out', f('server.csr'));
  openssl(
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-set_serial',
    '0x5e1f',
    '-days',
    '2',
    '-sha256',
    '-extfile',
    f('server.ext'),
    '-out',
    f('server.crt'),
  );
  return { caFile: f('ca.crt'), certFile: f('server.crt'), keyFile: f('server.key') };
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns the last result. Not a timing assertion. */
export async function waitFor(check: () => boolean, timeoutMs = 10_000, everyMs = 20): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return check();
}

/** The agent's real logger, writing into memory: what a person would read in `docker logs`. */
export function capturedLog() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { log: createLogger('info', sink), lines };
}

/** What `promise` rejects with; a promise that resolves fails the test. */
export async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** A valid registration body; only the install ID differs between agents in these tests. */
export function registerRequest(installId: string = randomUUID()): RegisterRequest {
  return {
    installId,
    hostname: 'alices-desktop',
    cpuCores: 8,
    memoryBytes: 16 * 1024 ** 3,
    ipAddress: '100.64.0.7',
    versions: { agent: '0.1.0', ray: '2.58.0', python: '3.12.7' },
    limits: { cpus: 2, memoryBytes: 4 * 1024 ** 3 },
  };
}

/** The first heartbeat of a freshly registered agent: Ray not joined yet, nothing running. */
export function connectingHeartbeat(providerId: string, bootId: string): HeartbeatRequest {
  return {
    providerId,
    bootId,
    state: 'connecting',
    rayNode: 'joining',
    cpuPercent: 0,
    memoryBytes: 0,
    memoryPercent: 0,
    activeTasks: 0,
    recentErrors: [],
    sentAt: new Date().toISOString(),
  };
}

/** The endpoints of a test server listening on 127.0.0.1 (`path` as MANAGER_URL would carry it). */
export function managerEndpoints(address: AddressInfo | string | null, path = ''): ManagerEndpoints {
  if (address === null || typeof address === 'string') throw new Error('the server is not listening on a port');
  const parsed = parseManagerUrl(`https://127.0.0.1:${address.port}${path}`, false);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

/**
 * Bundles test/fixtures/<name>.ts into `outDir` with esbuild, for a test that runs it as a real child process;
 * returns the bundle's path.
 */
export async function bundleFixture(name: string, outDir: string): Promise<string> {
  const outfile = join(outDir, `${name}.mjs`);
  await build({
    entryPoints: [join(import.meta.dirname, 'fixtures', `${name}.ts`)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'silent',
    // Bundled CommonJS dependencies (pino's) call require(), which an ES module does not have.
    banner: {
      js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
    },
  });
  return outfile;
}

export interface InProcessManager {
  /** Built, not yet listening: add hooks, then listen. */
  manager: ManagerServer;
  store: Store;
  /** The throwaway CA the manager's certificate is signed by. */
  caFile: string;
  /** Closes the manager and its store and removes its directory. */
  close(): Promise<void>;
}

/**
 * The real manager over real TLS (throwaway CA) with a store in a fresh directory, silent, holding the given
 * enrollment tokens. The manager's modules load here, not at the top, so tests that never use it do not load them.
 */
export async function buildManager(
  prefix: string,
  enrollmentTokens: Array<[token: string, label: string]>,
  heartbeatIntervalSeconds: number,
): Promise<InProcessManager> {
  const [{ buildServer }, { Store }, { default: pino }] = await Promise.all([
    import('@ray-agent/manager/server'),
    import('@ray-agent/manager/store'),
    import('pino'),
  ]);
  const suite = tempDirForSuite(prefix);
  const tls = makeTls(suite.dir);
  const store = new Store(join(suite.dir, 'manager.db'));
  for (const [token, label] of enrollmentTokens) store.ensureEnrollmentToken(token, label);
  const manager = buildServer({
    store,
    tls: { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) },
    heartbeatIntervalSeconds,
    logger: pino({ level: 'silent' }),
  });
  return {
    manager,
    store,
    caFile: tls.caFile,
    async close() {
      await manager.close();
      store.close();
      suite.remove();
    },
  };
}

/** The options of a Ray node as the supervisor builds them (fixed example ports and addresses), with overrides. */
export function rayNodeOptions(overrides: Partial<RayNodeOptions> = {}): RayNodeOptions {
  return {
    rayBin: 'ray',
    gcs: { host: '100.96.0.1', port: 6379 },
    resources: rayResources({ cpus: 1, memoryBytes: 1024 ** 3, source: 'env', shmBytes: undefined }),
    ports: {
      nodeManager: 8076,
      objectManager: 8077,
      minWorker: 10002,
      maxWorker: 10101,
      metricsExport: 8080,
      dashboardAgentGrpc: 8078,
      dashboardAgentListen: 52365,
      runtimeEnvAgent: 8079,
    },
    nodeIpAddress: '100.96.0.7',
    providerId: 'alices-desktop-7f3a',
    drainDeadlineSeconds: 5,
    gcsReconnectTimeoutSeconds: 60,
    ...overrides,
  };
}
