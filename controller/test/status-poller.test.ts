import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { StatusPoller } from '../src/app/status-poller.js';

let server: Server | undefined;

/** A real HTTP server on loopback answering /status as the test says. */
async function serve(body: unknown, status = 200): Promise<number> {
  const http = createServer((_request, response) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  server = http;
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return (http.address() as AddressInfo).port;
}

afterEach(async () => {
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

describe('StatusPoller against a real loopback HTTP server', () => {
  test('a document with another schema version is outdated', async () => {
    const facts = await new StatusPoller(await serve({ schemaVersion: 2, state: 'contributing' })).read();
    expect(facts).toEqual({ kind: 'outdated', schemaVersion: 2 });
  });

  test('a broken document is unreachable, not stale good news', async () => {
    const facts = await new StatusPoller(await serve({ schemaVersion: 1, state: 'contributing' })).read();
    expect(facts.kind).toBe('unreachable');
  });

  test('a 403 is unreachable with its status', async () => {
    const facts = await new StatusPoller(await serve({ error: 'host not allowed' }, 403)).read();
    expect(facts).toEqual({ kind: 'unreachable', error: 'HTTP 403' });
  });

  test('nothing listening is unreachable with the connection error', async () => {
    const port = await serve({});
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
    const facts = await new StatusPoller(port).read();
    expect(facts).toEqual({ kind: 'unreachable', error: 'ECONNREFUSED' });
  });
});
