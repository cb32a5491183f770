import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { docker, mustRun, waitFor } from './run.js';
import type { TestPki } from './tls.js';

export const NODE_IMAGE = process.env.NODE_IMAGE ?? 'node:22-bookworm-slim';
const SERVER_SCRIPT = join(import.meta.dirname, 'fault-manager-server.mjs');

/** HTTPS ports of the fault manager and the certificate each one presents. */
export const FAULT_PORTS = { trusted: 8443, selfSigned: 8444, wrongHost: 8445, expired: 8446 } as const;

/** One scripted answer; `ok` is the built-in success (a new provider for register, 200 for heartbeat). */
export type Step =
  | { ok: true }
  | { hang: true }
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; text: string; contentType?: string; headers?: Record<string, string> }
  | { status: number; bytes: number; headers?: Record<string, string> };

export interface ScenarioConfig {
  register?: Step[];
  heartbeat?: Step[];
  /** Answer once the queue is empty; `{ ok: true }` unless set. */
  registerDefault?: Step;
  heartbeatDefault?: Step;
  /** Added to serverTime and the Date header of every answer. */
  clockOffsetSeconds?: number;
  heartbeatIntervalSeconds?: number;
}

export interface SeenRequest {
  seq: number;
  /** Milliseconds since the epoch, by the (shared) host clock. */
  at: number;
  port: number;
  method: string;
  path: string;
  scenario: string | null;
  route: 'register' | 'heartbeat' | null;
  /** SHA-256 of the whole Authorization header value; the value itself is never kept. */
  authorizationSha256: string | null;
  headers: Record<string, string>;
  body: unknown;
  answered: 'hang' | { status: number; providerId?: string } | null;
}

export const errorStep = (status: number, code: string, message: string): Step => ({
  status,
  json: { error: { code, message } },
});

/** What the fault manager records for `Authorization: Bearer <secret>`. */
export function bearerHash(secret: string): string {
  return createHash('sha256').update(`Bearer ${secret}`).digest('hex');
}

/** The credential the fault manager hands to a provider (deterministic, so tests need not read it from a log). */
export function credentialFor(providerId: string): string {
  return `${providerId}-credential-`.padEnd(48, '0');
}

/**
 * Certificates for the fault manager's extra ports, next to the test PKI's own: self-signed, signed by the test CA
 * for another host name, and signed by the test CA but expired (made with `openssl ca`, which takes explicit
 * validity dates). The trusted port uses the PKI's server.pem, whose name list must include the fault manager.
 */
export async function makeFaultCerts(pki: TestPki, host: string): Promise<void> {
  const f = (name: string) => join(pki.dir, name);
  await mustRun('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('selfsigned.key'),
    '-out',
    f('selfsigned.pem'),
    '-days',
    '2',
    '-subj',
    `/CN=${host}`,
    '-addext',
    `subjectAltName=DNS:${host}`,
  ]);
  writeFileSync(f('ca-db.txt'), '');
  writeFileSync(f('ca-serial'), '1000\n');
  writeFileSync(
    f('ca.cnf'),
    [
      '[ca]',
      'default_ca = test_ca',
      '[test_ca]',
      `database = ${f('ca-db.txt')}`,
      `serial = ${f('ca-serial')}`,
      `new_certs_dir = ${pki.dir}`,
      'default_md = sha256',
      'policy = any_name',
      'unique_subject = no',
      'copy_extensions = none',
      '[any_name]',
      'commonName = supplied',
      '[wronghost_ext]',
      'subjectAltName = DNS:wrong-host.example',
      'extendedKeyUsage = serverAuth',
      '[expired_ext]',
      `subjectAltName = DNS:${host}`,
      'extendedKeyUsage = serverAuth',
      '',
    ].join('\n'),
  );
  const signed = async (name: string, cn: string, dates: string[]) => {
    await mustRun('openssl', [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
      '-subj',
      `/CN=${cn}`,
    ]);
    await mustRun('openssl', [
      'ca',
      '-batch',
      '-notext',
      '-config',
      f('ca.cnf'),
      '-cert',
      pki.caCert,
      '-keyfile',
      join(pki.dir, 'ca.key'),
      '-in',
      f(`${name}.csr`),
      '-out',
      f(`${name}.pem`),
      '-extensions',
      `${name}_ext`,
      ...dates,
    ]);
  };
  await signed('wronghost', 'wrong-host.example', ['-days', '2']);
  await signed('expired', host, ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z']);
  // The container runs the server as root, but keep the keys readable like makePki does for other containers.
  await mustRun('chmod', ['0644', f('selfsigned.key'), f('wronghost.key'), f('expired.key')]);
}

/**
 * The misbehaving manager: fault-manager-server.mjs in a Node container on the test's network, reachable by
 * agents as https://<name>:<port>/<scenario>/api/register and scripted by the test through a control port
 * published on 127.0.0.1 only.
 */
export class FaultManager {
  private controlPort = 0;

  constructor(
    readonly name: string,
    private readonly network: string,
    private readonly pki: TestPki,
  ) {}

  async start(): Promise<void> {
    await docker(
      'run',
      '-d',
      '--name',
      this.name,
      '--network',
      this.network,
      '-p',
      '127.0.0.1::9000',
      '-v',
      `${SERVER_SCRIPT}:/fault/fault-manager-server.mjs:ro`,
      '-v',
      `${this.pki.dir}:/tls:ro`,
      NODE_IMAGE,
      'node',
      '/fault/fault-manager-server.mjs',
      '/tls',
    );
    const port = await docker('port', this.name, '9000/tcp');
    const match = /127\.0\.0\.1:(\d+)/.exec(port);
    if (!match) throw new Error(`fault manager control port is not on 127.0.0.1: ${port}`);
    this.controlPort = Number(match[1]);
    await waitFor(
      'the fault manager',
      async () => ((await this.control('GET', '/healthz')) ? true : undefined),
      30_000,
    );
  }

  /** MANAGER_URL for an agent playing `scenario` against the given port. */
  url(scenario: string, port: number = FAULT_PORTS.trusted): string {
    return `https://${this.name}:${port}/${scenario}/api/register`;
  }

  async script(scenario: string, config: ScenarioConfig): Promise<void> {
    await this.control('PUT', `/scenarios/${scenario}`, config);
  }

  async requests(scenario?: string, route?: 'register' | 'heartbeat'): Promise<SeenRequest[]> {
    const all = (await this.control('GET', '/requests')) as SeenRequest[];
    return all.filter(
      (entry) =>
        (scenario === undefined || entry.scenario === scenario) && (route === undefined || entry.route === route),
    );
  }

  async connections(): Promise<{
    connections: Record<string, number>;
    tlsErrors: Array<{ port: number; at: number; message: string }>;
  }> {
    return (await this.control('GET', '/connections')) as never;
  }

  private async control(method: 'GET' | 'PUT', path: string, body?: unknown): Promise<unknown> {
    const response = await request(`http://127.0.0.1:${this.controlPort}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`fault manager ${method} ${path}: ${response.statusCode} ${text}`);
    return JSON.parse(text);
  }
}
