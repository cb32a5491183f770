/**
 * The overlay's coordination through the manager, against the real server over real TLS: overlay addresses, the
 * gateway's sync, the cluster access answered to register and heartbeat, key rotation and revocation.
 */
import {
  ErrorBody,
  type GatewayPeerReport,
  GatewaySyncResponse,
  HeartbeatResponse,
  ProviderSummary,
  type RegisterResponse,
  type TunnelReport,
} from '@ray-agent/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  GATEWAY_TOKEN,
  heartbeatBody,
  NO_RATE_LIMITS,
  overlayNetwork,
  postHeartbeat,
  postRegister,
  registered,
  startTestServer,
  type TestServer,
  tempDir,
  wireguardKey,
} from './helpers.js';

const INSTALLS = [
  '7c9e6679-7425-40de-944b-e07fc1f90ae7',
  '0b7f8a52-3c1d-4e5f-8a9b-0c1d2e3f4a5b',
  '3d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a',
  '5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d',
  '9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b',
  'c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f',
];
const RAY_TOKEN = 'ray-auth-token-SECRET-0123456789abcdef';
const GATEWAY_KEY = wireguardKey();

let server: TestServer | undefined;

afterEach(async () => {
  if (!server) return;
  const problems = [...server.openApiProblems];
  await server.close();
  server = undefined;
  expect(problems, 'responses must match manager/openapi.json').toEqual([]);
});

async function start(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  server = await startTestServer(options);
  return server;
}

function code(body: unknown): string {
  return ErrorBody.parse(body).error.code;
}

/** One sync; `token` null sends none. */
function sync(s: TestServer, overrides: Record<string, unknown> = {}, token: string | null = GATEWAY_TOKEN) {
  return s.call('POST', '/api/gateway/sync', {
    ...(token === null ? {} : { token }),
    body: {
      publicKey: GATEWAY_KEY,
      endpoint: 'gateway.cluster.test:51820',
      routes: ['172.30.0.0/24'],
      peers: [],
      ...overrides,
    },
    checkRequest: true,
  });
}

/** A sync that must work; its peers by address (providers registered at one instant come in either order). */
async function synced(s: TestServer, overrides: Record<string, unknown> = {}): Promise<GatewaySyncResponse> {
  const res = await sync(s, overrides);
  expect(res.status, res.text).toBe(200);
  const answer = GatewaySyncResponse.parse(res.body);
  return { ...answer, peers: answer.peers.sort((x, y) => x.address.localeCompare(y.address)) };
}

async function summary(s: TestServer, providerId: string): Promise<ProviderSummary> {
  const res = await s.call('GET', `/api/providers/${providerId}`, { token: ADMIN_TOKEN });
  expect(res.status, res.text).toBe(200);
  return ProviderSummary.parse(res.body);
}

/** Registers install `n` (with a fresh key unless `key` is null). */
async function join(s: TestServer, n: number, key: string | null = wireguardKey()) {
  const reg = registered(
    await postRegister(s, { installId: INSTALLS[n], ...(key === null ? {} : { wireguardPublicKey: key }) }),
  );
  return { reg, key };
}

function beat(s: TestServer, reg: RegisterResponse, overrides: Record<string, unknown> = {}) {
  return postHeartbeat(s, reg, overrides);
}

describe('overlay addresses', () => {
  it('are the lowest free host, kept across registrations, freed by revocation, with a clear error when full', async () => {
    const s = await start({ overlayNetwork: '100.96.0.0/29', rateLimits: NO_RATE_LIMITS });
    const a = await join(s, 0);
    const b = await join(s, 1);
    const keyless = await join(s, 2, null);
    expect((await summary(s, a.reg.providerId)).overlayAddress).toBe('100.96.0.2');
    expect((await summary(s, b.reg.providerId)).overlayAddress).toBe('100.96.0.3');
    expect((await summary(s, keyless.reg.providerId)).overlayAddress).toBeNull();

    // Registering again (the agent proves its credential) keeps the address, even with a new key.
    const again = registered(
      await postRegister(s, {
        installId: INSTALLS[0],
        currentCredential: a.reg.credential,
        wireguardPublicKey: wireguardKey(),
      }),
    );
    expect(again.providerId).toBe(a.reg.providerId);
    expect((await summary(s, a.reg.providerId)).overlayAddress).toBe('100.96.0.2');

    // Revoking frees an address; a provider registering again keeps its own, a new one gets the lowest free.
    expect((await s.call('POST', `/api/providers/${a.reg.providerId}/revoke`, { token: ADMIN_TOKEN })).status).toBe(
      200,
    );
    registered(
      await postRegister(s, { installId: INSTALLS[1], currentCredential: b.reg.credential, wireguardPublicKey: b.key }),
    );
    expect((await summary(s, b.reg.providerId)).overlayAddress).toBe('100.96.0.3');
    const c = await join(s, 3);
    expect((await summary(s, c.reg.providerId)).overlayAddress).toBe('100.96.0.2');

    // .4, .5, .6 and then none: the gateway (.1) and the broadcast address (.7) are never handed out.
    const addresses = [];
    for (const n of [4, 5]) addresses.push((await summary(s, (await join(s, n)).reg.providerId)).overlayAddress);
    expect(addresses).toEqual(['100.96.0.4', '100.96.0.5']);
    const keyed = registered(
      await postRegister(s, {
        installId: INSTALLS[2],
        currentCredential: keyless.reg.credential,
        wireguardPublicKey: wireguardKey(),
      }),
    );
    expect((await summary(s, keyed.providerId)).overlayAddress).toBe('100.96.0.6');
    const full = await postRegister(s, {
      installId: 'f0e1d2c3-b4a5-4968-8776-655443322110',
      wireguardPublicKey: wireguardKey(),
    });
    expect(full.status, full.text).toBe(503);
    expect(ErrorBody.parse(full.body).error).toEqual({
      code: 'overlay_full',
      message:
        'the overlay network 100.96.0.0/29 has no free address for another provider; the operator must widen ' +
        '--overlay-network or revoke providers that are gone',
    });
    // Nothing of the refused registration was kept.
    const count = s.store.db.prepare('SELECT COUNT(*) AS n FROM providers').get() as { n: number };
    expect(count.n).toBe(6);
  });
});

describe('POST /api/gateway/sync', () => {
  it('is 404 no_gateway on a manager without a gateway', async () => {
    const s = await start();
    const res = await sync(s);
    expect(res.status).toBe(404);
    expect(code(res.body)).toBe('no_gateway');
  });

  it('rejects a missing or wrong gateway token with 401, and other tokens too', async () => {
    const s = await start({ overlayNetwork: '100.96.0.0/16' });
    for (const token of [null, 'wrong-gateway-token-0123456789', ADMIN_TOKEN, `${GATEWAY_TOKEN}x`]) {
      const res = await sync(s, {}, token);
      expect(res.status, String(token)).toBe(401);
      expect(code(res.body)).toBe('gateway_token_rejected');
    }
    expect(s.store.getGateway()).toBeNull();
    const bad = await s.call('POST', '/api/gateway/sync', {
      token: GATEWAY_TOKEN,
      body: { publicKey: 'not-a-key', endpoint: 'gateway.cluster.test:51820', routes: [], peers: [] },
    });
    expect(bad.status).toBe(400);
    expect(ErrorBody.parse(bad.body).error.message).toMatch(/^publicKey: a WireGuard key is 44 base64 characters/);
  });

  it('admits exactly the registered, non-revoked providers with a key, and drops a revoked one', async () => {
    const s = await start({ overlayNetwork: '100.96.0.0/16' });
    const first = await synced(s);
    expect(first).toMatchObject({ network: '100.96.0.0/16', gatewayAddress: '100.96.0.1', peers: [] });
    expect(first.syncIntervalSeconds).toBe(2);

    const a = await join(s, 0);
    const b = await join(s, 1);
    await join(s, 2, null);
    const peers = (await synced(s)).peers;
    expect(peers).toEqual([
      { providerId: a.reg.providerId, publicKey: a.key, address: '100.96.0.2' },
      { providerId: b.reg.providerId, publicKey: b.key, address: '100.96.0.3' },
    ]);

    const revoke = await s.call('POST', `/api/providers/${b.reg.providerId}/revoke`, { token: ADMIN_TOKEN });
    expect(revoke.status, revoke.text).toBe(200);
    expect(ProviderSummary.parse(revoke.body).revokedAt).toBe(s.clock.now.toISOString());
    expect((await synced(s)).peers.map((p) => p.providerId)).toEqual([a.reg.providerId]);
  });

  it('records what the gateway saw of each peer, and forgets a peer it no longer reports', async () => {
    const s = await start({ overlayNetwork: '100.96.0.0/16' });
    const a = await join(s, 0);
    expect((await summary(s, a.reg.providerId)).gatewayPeer).toBeNull();
    const seen = { publicKey: a.key, lastHandshakeAt: '2026-12-01T10:00:00.000Z', rxBytes: 1234, txBytes: 5678 };
    // A peer the manager does not know is ignored.
    const stranger = { publicKey: wireguardKey(), lastHandshakeAt: null, rxBytes: 0, txBytes: 0 };
    await synced(s, { peers: [seen, stranger] });
    expect((await summary(s, a.reg.providerId)).gatewayPeer).toEqual({
      lastHandshakeAt: '2026-12-01T10:00:00.000Z',
      rxBytes: 1234,
      txBytes: 5678,
    });
    expect(s.store.getGateway()).toEqual({
      publicKey: GATEWAY_KEY,
      endpoint: 'gateway.cluster.test:51820',
      routes: ['172.30.0.0/24'],
      lastSyncAt: s.clock.now.toISOString(),
    });
    await synced(s, { peers: [] });
    expect((await summary(s, a.reg.providerId)).gatewayPeer).toBeNull();
  });

  it('takes a report of thousands of peers, beyond the body limit of the other routes', async () => {
    const s = await start({ overlayNetwork: '100.96.0.0/16' });
    const { reg, key } = await join(s, 0);
    const peers: GatewayPeerReport[] = Array.from({ length: 5000 }, () => ({
      publicKey: wireguardKey(),
      lastHandshakeAt: '2026-12-01T10:00:00.000Z',
      rxBytes: 123_456_789_012,
      txBytes: 123_456_789_012,
    }));
    peers.push({ publicKey: key ?? '', lastHandshakeAt: null, rxBytes: 7, txBytes: 8 });
    expect(JSON.stringify(peers).length).toBeGreaterThan(10 * 64 * 1024);
    await synced(s, { peers });
    expect((await summary(s, reg.providerId)).gatewayPeer).toEqual({ lastHandshakeAt: null, rxBytes: 7, txBytes: 8 });
  });

  it('has its own rate limit per client address', async () => {
    const s = await start({
      overlayNetwork: '100.96.0.0/16',
      rateLimits: { ...NO_RATE_LIMITS, gatewaySyncPerClient: { max: 3, windowSeconds: 60 } },
    });
    for (let i = 0; i < 3; i++) expect((await sync(s)).status).toBe(200);
    const limited = await sync(s);
    expect(limited.status).toBe(429);
    expect(ErrorBody.parse(limited.body).error.message).toMatch(
      /^more than 3 gateway syncs a minute from this address/,
    );
    // Registrations and heartbeats are not counted against it, nor it against them.
    expect((await postRegister(s, { wireguardPublicKey: wireguardKey() })).status).toBe(200);
  });
});

describe('cluster access in register and heartbeat answers', () => {
  it('is direct (overlay null) without a gateway, even with a key; Ray token null when not configured', async () => {
    const s = await start();
    // A gateway synced with this database in an earlier run, when the manager had one: it has none now.
    s.store.syncGateway(
      { publicKey: GATEWAY_KEY, endpoint: 'gateway.cluster.test:51820', routes: [], peers: [] },
      overlayNetwork('100.96.0.0/16'),
    );
    const { reg } = await join(s, 0);
    expect(reg.cluster).toEqual({ overlay: null, rayAuthToken: null });
    const hb = HeartbeatResponse.parse((await beat(s, reg)).body);
    expect(hb.cluster).toEqual({ overlay: null, rayAuthToken: null });
    expect((await summary(s, reg.providerId)).overlayAddress).toBeNull();
  });

  it('is the overlay once the gateway synced, only for a provider with a key; a change reaches the next heartbeat', async () => {
    const s = await start({ overlayNetwork: '100.96.0.0/16', gcsPort: 6380, rayAuthToken: RAY_TOKEN });
    // Registered before the gateway ever synced: direct, with the token.
    const early = await join(s, 0);
    expect(early.reg.cluster).toEqual({ overlay: null, rayAuthToken: RAY_TOKEN });
    await synced(s);
    const expected = {
      address: '100.96.0.2',
      network: '100.96.0.0/16',
      gatewayAddress: '100.96.0.1',
      gatewayPublicKey: GATEWAY_KEY,
      gatewayEndpoint: 'gateway.cluster.test:51820',
      routes: ['100.96.0.0/16', '172.30.0.0/24'],
      gcsAddress: '100.96.0.1:6380',
    };
    // The next heartbeat brings the overlay, even one that does not repeat the key.
    const hb = HeartbeatResponse.parse((await beat(s, early.reg)).body);
    expect(hb.cluster).toEqual({ overlay: expected, rayAuthToken: RAY_TOKEN });

    const late = await join(s, 1);
    expect(late.reg.cluster?.overlay).toMatchObject({ address: '100.96.0.3', gatewayPublicKey: GATEWAY_KEY });
    const keyless = await join(s, 2, null);
    expect(keyless.reg.cluster).toEqual({ overlay: null, rayAuthToken: RAY_TOKEN });

    // The gateway moved and has a new key: the next heartbeat says so.
    const newKey = wireguardKey();
    await synced(s, { publicKey: newKey, endpoint: 'gw2.cluster.test:51821', routes: ['100.96.0.0/16'] });
    const moved = HeartbeatResponse.parse((await beat(s, early.reg)).body).cluster?.overlay;
    expect(moved).toMatchObject({
      gatewayPublicKey: newKey,
      gatewayEndpoint: 'gw2.cluster.test:51821',
      routes: ['100.96.0.0/16'],
    });

    // Registering again without a key (the tunnel was removed) is direct mode, and the gateway drops the peer.
    const direct = registered(
      await postRegister(s, { installId: INSTALLS[0], currentCredential: early.reg.credential }),
    );
    expect(direct.cluster?.overlay).toBeNull();
    expect((await synced(s)).peers.map((p) => p.providerId)).toEqual([late.reg.providerId]);
  });

  it('is direct for everyone once the manager runs without its gateway again', async () => {
    const dir = tempDir('manager-overlay-');
    try {
      const withGateway = await start({ overlayNetwork: '100.96.0.0/16', dir: dir.dir });
      await synced(withGateway);
      const { reg } = await join(withGateway, 0);
      expect(reg.cluster?.overlay?.address).toBe('100.96.0.2');
      await withGateway.close();
      server = undefined;
      const without = await start({ dir: dir.dir });
      const hb = await beat(without, reg);
      expect(hb.status, hb.text).toBe(200);
      expect(HeartbeatResponse.parse(hb.body).cluster).toEqual({ overlay: null, rayAuthToken: null });
    } finally {
      dir.remove();
    }
  });

  it('never writes the Ray token to the log', async () => {
    const s = await start({ overlayNetwork: '100.96.0.0/16', rayAuthToken: RAY_TOKEN });
    await synced(s);
    const { reg } = await join(s, 0);
    expect(reg.cluster?.rayAuthToken).toBe(RAY_TOKEN);
    expect(HeartbeatResponse.parse((await beat(s, reg)).body).cluster?.rayAuthToken).toBe(RAY_TOKEN);
    expect(s.logs.lines.length).toBeGreaterThan(3);
    expect(s.logs.text).not.toContain(RAY_TOKEN);
    expect(s.logs.text).not.toContain(GATEWAY_TOKEN);
  });
});

describe('heartbeats', () => {
  it('store the tunnel report, shown in the listing', async () => {
    const s = await start({ overlayNetwork: '100.96.0.0/16' });
    const { reg } = await join(s, 0);
    const tunnel: TunnelReport = {
      state: 'up',
      address: '100.96.0.2',
      gatewayEndpoint: 'gateway.cluster.test:51820',
      lastHandshakeAt: '2026-12-01T10:00:00.000Z',
      rxBytes: 10,
      txBytes: 20,
      problem: null,
    };
    const res = await s.call('POST', '/api/heartbeat', {
      token: reg.credential,
      body: heartbeatBody(reg.providerId, { tunnel }),
      checkRequest: true,
    });
    expect(res.status, res.text).toBe(200);
    expect((await summary(s, reg.providerId)).tunnel).toEqual(tunnel);
    // An agent that stops reporting a tunnel (an older one) shows none.
    await beat(s, reg);
    expect((await summary(s, reg.providerId)).tunnel).toBeNull();
  });

  it('rotate the key: the new one replaces the old at the gateway; one another provider holds is refused', async () => {
    const s = await start({ overlayNetwork: '100.96.0.0/16' });
    await synced(s);
    const a = await join(s, 0);
    const b = await join(s, 1);
    const rotated = wireguardKey();
    const ok = await beat(s, a.reg, { wireguardPublicKey: rotated });
    expect(ok.status, ok.text).toBe(200);
    expect(HeartbeatResponse.parse(ok.body).cluster?.overlay?.address).toBe('100.96.0.2');
    expect((await synced(s)).peers).toEqual([
      { providerId: a.reg.providerId, publicKey: rotated, address: '100.96.0.2' },
      { providerId: b.reg.providerId, publicKey: b.key, address: '100.96.0.3' },
    ]);

    const taken = await beat(s, a.reg, { wireguardPublicKey: b.key });
    expect(taken.status).toBe(409);
    expect(ErrorBody.parse(taken.body).error).toEqual({
      code: 'wireguard_key_in_use',
      message:
        `another provider (${b.reg.providerId}) holds this WireGuard key: two machines share one tunnel volume; ` +
        'give each machine its own tunnel volume (remove the copied one to make a new key)',
    });
    expect(taken.headers['retry-after']).toBe('10');
    const registerTaken = await postRegister(s, { installId: INSTALLS[2], wireguardPublicKey: b.key });
    expect(registerTaken.status).toBe(409);
    expect(code(registerTaken.body)).toBe('wireguard_key_in_use');
    // Nothing changed: the refused heartbeat was not counted, the keys are as they were.
    expect((await summary(s, a.reg.providerId)).heartbeats).toBe(1);
    expect((await synced(s)).peers.map((p) => p.publicKey)).toEqual([rotated, b.key]);
  });
});

describe('revocation', () => {
  it('refuses the heartbeats (401 credential_rejected) and any registration of the install, and stays revoked', async () => {
    const s = await start({ overlayNetwork: '100.96.0.0/16' });
    const { reg, key } = await join(s, 0);
    expect((await beat(s, reg)).status).toBe(200);
    const revokedAt = s.clock.now.toISOString();
    expect((await s.call('POST', `/api/providers/${reg.providerId}/revoke`, { token: ADMIN_TOKEN })).status).toBe(200);

    const hb = await beat(s, reg);
    expect(hb.status).toBe(401);
    expect(ErrorBody.parse(hb.body).error).toEqual({
      code: 'credential_rejected',
      message: `provider ${reg.providerId} was revoked by the cluster's operator at ${revokedAt}; this machine no longer contributes to the cluster`,
    });

    // With proof (its credential, or the same enrollment token) or without: 409, saying what to do.
    for (const proof of [{ currentCredential: reg.credential }, {}]) {
      const again = await postRegister(s, { installId: INSTALLS[0], ...proof });
      expect(again.status, again.text).toBe(409);
      expect(code(again.body)).toBe('install_id_taken');
    }
    const withProof = await postRegister(s, { installId: INSTALLS[0], currentCredential: reg.credential });
    expect(ErrorBody.parse(withProof.body).error.message).toMatch(
      new RegExp(`^this machine's provider ${reg.providerId} was revoked by the cluster's operator at ${revokedAt}`),
    );

    // Revoking again keeps the first time; the listing shows it.
    s.clock.now = new Date(s.clock.now.getTime() + 60_000);
    const twice = await s.call('POST', `/api/providers/${reg.providerId}/revoke`, { token: ADMIN_TOKEN });
    expect(ProviderSummary.parse(twice.body).revokedAt).toBe(revokedAt);
    expect((await summary(s, reg.providerId)).revokedAt).toBe(revokedAt);

    // A new install (a new state volume) is a new provider, and may reuse the tunnel key the revoked one had.
    const fresh = await join(s, 1, key);
    expect(fresh.reg.providerId).not.toBe(reg.providerId);
    expect((await synced(s)).peers).toEqual([
      { providerId: fresh.reg.providerId, publicKey: key, address: '100.96.0.2' },
    ]);
  });

  it('needs the admin token and a known provider', async () => {
    const s = await start();
    const { reg } = await join(s, 0);
    const noAdmin = await s.call('POST', `/api/providers/${reg.providerId}/revoke`, { token: reg.credential });
    expect(noAdmin.status).toBe(401);
    expect(code(noAdmin.body)).toBe('admin_token_rejected');
    const unknown = await s.call('POST', '/api/providers/prv-aaaaaaaaaaaa/revoke', { token: ADMIN_TOKEN });
    expect(unknown.status).toBe(404);
    expect(code(unknown.body)).toBe('unknown_provider');
    expect((await beat(s, reg)).status).toBe(200);
  });
});
