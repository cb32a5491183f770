import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { HeartbeatRequest, RegisterRequest } from '@ray-agent/protocol';
import { Store } from '../../../manager/src/store.js';
import { typicalHeartbeat } from './heartbeat-body.js';

export interface Seeded {
  seconds: number;
  adminToken: string;
}

/**
 * `providers` providers registered through the manager's own store code, each with one heartbeat accepted (its
 * boot holds the identity, as in a running fleet), and the files the load generator and the storm read: one
 * heartbeat request per provider (shuffled, so consecutive heartbeats hit rows all over the table as a fleet's
 * would) and the first `agents` providers' credentials.
 */
export function seed(db: string, providers: number, files: { bodies: string; agents: string }, agents: number): Seeded {
  const t0 = performance.now();
  const store = new Store(db);
  const adminToken = `bench-admin-${randomUUID()}`;
  store.ensureAdminToken(adminToken, 'bench');
  const bodies: Array<{ authorization: string; body: string }> = [];
  const storm: Array<{ providerId: string; credential: string; bootId: string }> = [];
  store.db.transaction(() => {
    for (let i = 0; i < providers; i++) {
      const registered = store.register(
        RegisterRequest.parse({
          installId: randomUUID(),
          hostname: `bench-host-${i}`,
          cpuCores: 8,
          memoryBytes: 16 * 1024 ** 3,
          ipAddress: '127.0.0.1',
          versions: { agent: '0.1.0', ray: '2.58.0', python: '3.11.2' },
          limits: { cpus: 2, memoryBytes: 4 * 1024 ** 3 },
        }),
        null,
      );
      const heartbeat = {
        providerId: registered.providerId,
        bootId: randomUUID(),
        ...typicalHeartbeat(),
        sentAt: new Date().toISOString(),
      };
      store.acceptHeartbeat(HeartbeatRequest.parse(heartbeat), 10);
      bodies.push({ authorization: `Bearer ${registered.credential}`, body: JSON.stringify(heartbeat) });
      if (i < agents)
        storm.push({ providerId: registered.providerId, credential: registered.credential, bootId: heartbeat.bootId });
    }
  })();
  store.close();
  for (let i = bodies.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [bodies[i], bodies[j]] = [bodies[j] as (typeof bodies)[number], bodies[i] as (typeof bodies)[number]];
  }
  writeFileSync(files.bodies, JSON.stringify(bodies));
  writeFileSync(files.agents, JSON.stringify(storm));
  return { seconds: (performance.now() - t0) / 1000, adminToken };
}
