/**
 * Issue 4, case 5: the manager commits a registration but its answer never reaches the agent. The real manager
 * runs in-process over real TLS behind a loopback TCP proxy; the proxy cuts the agent's connection once the manager
 * has committed the first registration and before any byte of its answer is sent. The agent's retry, keyed by its
 * install ID, must get the same provider back, and the manager must hold exactly one provider.
 */
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import type { ManagerServer } from '@ray-agent/manager/server';
import type { Store } from '@ray-agent/manager/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManagerEndpoints } from '../src/config/manager-url.js';
import { createLogger } from '../src/log.js';
import { ManagerClient, type ManagerError } from '../src/manager/manager-client.js';
import { register } from '../src/manager/registration.js';
import { StateStore } from '../src/state/state-store.js';
import { Backoff } from '../src/supervisor/backoff.js';
import {
  buildManager,
  connectingHeartbeat,
  type InProcessManager,
  managerEndpoints,
  registerRequest,
  tempDir,
} from './helpers.js';

const TOKEN = 'enroll_lost-response_0123456789abcdefghijkl';
const INTERVAL = 10;

let inProcess: InProcessManager;
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
  inProcess = await buildManager('lost-response-', [[TOKEN, 'test']], INTERVAL);
  ({ manager, store, caFile } = inProcess);
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
  endpoints = managerEndpoints(proxy.address());
});

afterAll(async () => {
  await new Promise((resolve) => proxy.close(resolve));
  await inProcess.close();
});

describe('a registration whose answer is lost (real manager behind a cutting proxy)', () => {
  it('retries, gets the same provider ID, and the manager holds exactly one provider', async () => {
    const client = new ManagerClient(endpoints, { caFile });
    const state = new StateStore(tempDir('agent-state-'));
    state.preflight();
    const body = registerRequest(state.installId());
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
        connectingHeartbeat(credentials?.providerId ?? '', '7d5f9d2e-3c1b-4a8e-9f00-1b2c3d4e5f60'),
        credentials?.credential ?? '',
      );
      expect(beat.body.ok).toBe(true);
      expect(store.listProviders(INTERVAL)[0]?.heartbeats).toBe(1);
    } finally {
      await client.close();
    }
  });
});
