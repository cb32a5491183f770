/**
 * Issue 4, case 5: the manager commits a registration but its answer never reaches the agent. The real manager
 * runs in-process over real TLS behind a loopback TCP proxy; the proxy cuts the agent's connection once the manager
 * has committed the first registration and before any byte of its answer is sent. The agent's retry, keyed by its
 * install ID, must get the same provider back, and the manager must hold exactly one provider.
 */
import { readFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { buildServer, type ManagerServer } from '@ray-agent/manager/server';
import { Store } from '@ray-agent/manager/store';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ManagerEndpoints, parseManagerUrl } from '../src/config/manager-url.js';
import { createLogger } from '../src/log.js';
import { ManagerClient, type ManagerError } from '../src/manager/manager-client.js';
import { register } from '../src/manager/registration.js';
import { StateStore } from '../src/state/state-store.js';
import { Backoff } from '../src/supervisor/backoff.js';
import { makeTls, tempDir, tempDirForSuite } from './helpers.js';

const TOKEN = 'enroll_lost-response_0123456789abcdefghijkl';
const INTERVAL = 10;

let dir: { dir: string; remove: () => void };
let store: Store;
let manager: ManagerServer;
let proxy: Server;
let endpoints: ManagerEndpoints;
let caFile: string;
/** Agent-side sockets, by the local port of the proxy's matching connection to the manager. */
const agentSide = new Map<number, Socket>();
let cutsLeft = 0;
const cuts: Array<{ providersAtCut: number }> = [];
let registerCalls = 0;

beforeAll(async () => {
  dir = tempDirForSuite('lost-response-');
  const tls = makeTls(dir.dir);
  caFile = tls.caFile;
  store = new Store(join(dir.dir, 'manager.db'));
  store.ensureEnrollmentToken(TOKEN, 'test');
  manager = buildServer({
    store,
    tls: { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) },
    heartbeatIntervalSeconds: INTERVAL,
    logger: pino({ level: 'silent' }),
  });
  // The cut happens after the route handler has committed and before the answer is written: onSend runs exactly
  // there. The manager's own code is unchanged; this hook only tells the proxy when to drop the agent.
  manager.addHook('onSend', async (request, _reply, payload) => {
    if (request.url !== '/api/register') return payload;
    registerCalls += 1;
    if (cutsLeft > 0) {
      cutsLeft -= 1;
      cuts.push({ providersAtCut: store.listProviders(INTERVAL).length });
      agentSide.get(request.socket.remotePort ?? -1)?.destroy();
    }
    return payload;
  });
  await manager.listen({ host: '127.0.0.1', port: 0 });
  const managerPort = (manager.server.address() as AddressInfo).port;

  proxy = createServer((agent) => {
    const upstream = connect(managerPort, '127.0.0.1');
    upstream.on('connect', () => agentSide.set(upstream.localPort ?? -1, agent));
    agent.pipe(upstream);
    upstream.pipe(agent);
    const close = () => {
      agent.destroy();
      upstream.destroy();
    };
    agent.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const parsed = parseManagerUrl(`https://127.0.0.1:${(proxy.address() as AddressInfo).port}`, false);
  if (typeof parsed === 'string') throw new Error(parsed);
  endpoints = parsed;
});

afterAll(async () => {
  await new Promise((resolve) => proxy.close(resolve));
  await manager.close();
  store.close();
  dir.remove();
});

describe('a registration whose answer is lost (real manager behind a cutting proxy)', () => {
  it('retries, gets the same provider ID, and the manager holds exactly one provider', async () => {
    const client = new ManagerClient(endpoints, { caFile });
    const state = new StateStore(tempDir('agent-state-'));
    state.preflight();
    const body = {
      installId: state.installId(),
      hostname: 'alices-desktop',
      cpuCores: 8,
      memoryBytes: 16 * 1024 ** 3,
      ipAddress: '100.64.0.7',
      versions: { agent: '0.1.0', ray: '2.58.0', python: '3.12.7' },
      limits: { cpus: 2, memoryBytes: 4 * 1024 ** 3 },
    };
    cutsLeft = 1;
    const retries: ManagerError[] = [];
    try {
      const credentials = await register(
        client,
        state,
        body,
        TOKEN,
        endpoints.base,
        createLogger('silent'),
        new AbortController().signal,
        (error) => retries.push(error),
        new Backoff(10, 50),
      );
      // The first answer was lost after the commit: the manager already held the provider when the cut came.
      expect(cuts).toEqual([{ providersAtCut: 1 }]);
      expect(retries).toHaveLength(1);
      expect(retries[0]).toMatchObject({ kind: 'network', retryable: true });
      expect(registerCalls).toBe(2);

      const providers = store.listProviders(INTERVAL);
      expect(providers).toHaveLength(1);
      expect(providers[0]?.registrations).toBe(2);
      expect(credentials?.providerId).toBe(providers[0]?.providerId);
      expect(state.loadCredentials()).toEqual(credentials);

      // The saved credential is the manager's current one (the retry rotated it): a heartbeat is accepted.
      const beat = await client.heartbeat(
        {
          providerId: credentials?.providerId ?? '',
          bootId: '7d5f9d2e-3c1b-4a8e-9f00-1b2c3d4e5f60',
          state: 'connecting',
          rayNode: 'joining',
          cpuPercent: 0,
          memoryBytes: 0,
          memoryPercent: 0,
          activeTasks: 0,
          recentErrors: [],
          sentAt: new Date().toISOString(),
        },
        credentials?.credential ?? '',
      );
      expect(beat.body.ok).toBe(true);
      expect(store.listProviders(INTERVAL)[0]?.heartbeats).toBe(1);
    } finally {
      await client.close();
    }
  });
});
