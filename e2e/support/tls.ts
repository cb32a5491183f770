import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mustRun } from './run.js';

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
}

/**
 * A private CA and a server certificate for the given names, made with the openssl CLI for this test run. RSA 2048
 * by default; `key: 'ecdsa'` (P-256) where a run opens many TLS connections, as a server handshake is far cheaper.
 */
export async function makePki(
  names: string[],
  options: { days?: number; dir?: string; key?: 'rsa' | 'ecdsa' } = {},
): Promise<TestPki> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'ray-agent-pki-'));
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const key = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const cert = join(dir, 'server.pem');
  const ext = join(dir, 'server.ext');
  const newkey =
    options.key === 'ecdsa' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', 'rsa:2048'];
  await mustRun('openssl', [
    'req',
    '-x509',
    ...newkey,
    '-nodes',
    '-keyout',
    caKey,
    '-out',
    ca,
    '-days',
    '2',
    '-subj',
    '/CN=Ray Agent test CA',
  ]);
  await mustRun('openssl', ['req', ...newkey, '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0]}`]);
  const san = names.map((name) => (/^[\d.]+$/.test(name) ? `IP:${name}` : `DNS:${name}`)).join(',');
  writeFileSync(ext, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  await mustRun('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-out',
    cert,
    '-days',
    String(options.days ?? 2),
    '-extfile',
    ext,
  ]);
  // The manager container runs as an unprivileged user and must read its key from the bind mount.
  chmodSync(key, 0o644);
  chmodSync(dir, 0o755);
  return { dir, caCert: ca, serverCert: cert, serverKey: key };
}

export function writeSecret(dir: string, name: string, value: string): string {
  const path = join(dir, name);
  writeFileSync(path, `${value}\n`, { mode: 0o644 });
  return path;
}
