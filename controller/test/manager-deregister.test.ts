import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { deregisterProvider, deregisterUrl } from '../src/app/manager-deregister.js';
import { freePort } from './support/free-port.js';
import { TestManager } from './support/leave-fixtures.js';

/** The controller's side of POST /api/deregister against the real manager over TLS with a private CA. */
const manager = new TestManager();

beforeAll(() => manager.start(), 120_000);
afterAll(() => manager.stop(), 60_000);

describe('deregisterUrl', () => {
  test('takes the base URL or the .../api/register URL the settings hold, https only', () => {
    for (const given of ['https://m.example.net', 'https://m.example.net/', 'https://m.example.net/api/register'])
      expect(deregisterUrl(given)).toEqual({ url: 'https://m.example.net/api/deregister' });
    expect(deregisterUrl('https://m.example.net:8443/base/api/register/')).toEqual({
      url: 'https://m.example.net:8443/base/api/deregister',
    });
    expect(deregisterUrl('http://m.example.net')).toEqual({
      error: 'the manager URL http://m.example.net must use https:// (example: https://manager.example.net)',
    });
    expect(deregisterUrl('not a url')).toEqual({
      error: 'the manager URL "not a url" is not a URL (example: https://manager.example.net)',
    });
  });
});

describe('deregisterProvider', () => {
  test('deregisters once; the same credential again reads as already gone', async () => {
    const reg = await manager.register();
    const first = await deregisterProvider({
      managerUrl: `${manager.url}/api/register`,
      credential: reg.credential,
      caPem: manager.caPem,
    });
    expect(first).toEqual({ ok: true, providerId: reg.providerId });
    expect((await manager.provider(reg.providerId)).health).toBe('left');
    const again = await deregisterProvider({
      managerUrl: manager.url,
      credential: reg.credential,
      caPem: manager.caPem,
    });
    expect(again).toEqual({
      ok: false,
      alreadyGone: true,
      error: expect.stringMatching(
        /^the manager refused the credential: the credential was refused: its provider .* left/,
      ),
    });
    expect(JSON.stringify(again)).not.toContain(reg.credential);
  });

  test('verifies the certificate: without the private CA the manager is not trusted, and nothing happens', async () => {
    const reg = await manager.register();
    const result = await deregisterProvider({ managerUrl: manager.url, credential: reg.credential });
    expect(result).toMatchObject({ ok: false, alreadyGone: false });
    if (result.ok) throw new Error('expected a failure');
    expect(result.error).toMatch(/could not be reached \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/);
    expect((await manager.provider(reg.providerId)).leftAt).toBeNull();
  });

  test('says why when the manager cannot be reached, or the URL is not https', async () => {
    const port = await freePort();
    const closed = await deregisterProvider({ managerUrl: `https://localhost:${port}`, credential: 'c'.repeat(43) });
    expect(closed).toEqual({
      ok: false,
      alreadyGone: false,
      error: expect.stringMatching(new RegExp(`^https://localhost:${port} could not be reached \\(ECONNREFUSED`)),
    });
    const plain = await deregisterProvider({ managerUrl: `http://localhost:${port}`, credential: 'c'.repeat(43) });
    expect(plain).toMatchObject({ ok: false, alreadyGone: false, error: expect.stringContaining('must use https://') });
  });
});
