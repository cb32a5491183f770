import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, expect, test } from 'vitest';
import { makePlaygroundPki } from '../src/playground/playground-pki.js';

function get(port: number, ca: string | undefined, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', servername, ...(ca ? { ca } : {}) }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('playground PKI', () => {
  test('a real TLS server with the certificate is trusted through the CA, and only through it', async () => {
    const pki = await makePlaygroundPki(['rap-manager', 'localhost', '127.0.0.1']);
    const server = createServer({ cert: pki.certPem, key: pki.keyPem }, (_req, res) => res.end('hello'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      expect(await get(port, pki.caPem, 'localhost')).toBe('hello');
      await expect(get(port, undefined, 'localhost')).rejects.toThrow(/self-signed|unable to verify|self signed/i);
      await expect(get(port, pki.caPem, 'other-host')).rejects.toThrow(/altnames|does not match/i);
      const stranger = await makePlaygroundPki(['localhost']);
      await expect(get(port, stranger.caPem, 'localhost')).rejects.toThrow(/unable to verify|self-signed|signature/i);
    } finally {
      server.close();
    }
  });
});
