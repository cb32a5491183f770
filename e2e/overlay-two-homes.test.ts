import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OverlayCluster, type OverlayProvider, recordMeasurement } from './support/overlay-cluster.js';
import { lastJson } from './support/run.js';

/**
 * Two providers, each behind its own NAT, talk to each other only over the overlay: Ray's object transfer and
 * owner-to-worker calls between them go provider -> gateway -> provider; a driver on the cluster side calls an actor
 * on each.
 */
const cluster = new OverlayCluster();
const providers: { provider: OverlayProvider; id: string; address: string }[] = [];
/** Tens of MB: well above Ray's inline limit, so the object lives in the maker's object store and is pulled. */
const OBJECT_BYTES = 48 * 1024 * 1024;

beforeAll(async () => {
  await cluster.start(2);
  const started = Date.now();
  const both = await Promise.all([cluster.startProvider(0), cluster.startProvider(1)]);
  for (const provider of both) {
    const status = await provider.waitForStatus('contributing', (s) => s.state === 'contributing', 300_000);
    providers.push({
      provider,
      id: status.registration.providerId ?? '',
      address: status.tunnel?.address ?? '',
    });
  }
  recordMeasurement('two providers: containers started -> both contributing', { ms: Date.now() - started });
});

afterAll(async () => {
  await cluster.stop();
});

describe('two providers behind two separate NATs', () => {
  test('each has its own overlay address, and neither home can reach the other directly', async () => {
    const [a, b] = providers;
    expect(a?.id).toBeTruthy();
    expect(b?.id).toBeTruthy();
    expect(a?.id).not.toBe(b?.id);
    expect(a?.address).toBeTruthy();
    expect(new Set([a?.address, b?.address, cluster.gatewayOverlayAddress]).size).toBe(3);
    expect(a?.provider.home.network).not.toBe(b?.provider.home.network);
  });

  test('an object put on one provider is consumed by a task on the other, byte for byte', async () => {
    const [a, b] = providers as [(typeof providers)[0], (typeof providers)[0]];
    // The maker owns the object (ray.put inside its task) and stays alive while the consumer pulls it.
    const result = await cluster.driver(
      `
import hashlib, json, os, ray
ray.init(address="auto", logging_level="ERROR")

@ray.remote(num_cpus=0.5, resources={"provider:${b.id}": 0.01})
def consume(refs):
    data = ray.get(refs[0])
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "ip": ray.util.get_node_ip_address()}

@ray.remote(num_cpus=0.5, resources={"provider:${a.id}": 0.01})
def make_and_hand_over(size):
    data = os.urandom(size)
    ref = ray.put(data)
    consumed = ray.get(consume.remote([ref]))
    return {"made": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "ip": ray.util.get_node_ip_address()},
            "consumed": consumed}

print(json.dumps(ray.get(make_and_hand_over.remote(${OBJECT_BYTES}))))
`,
      300_000,
    );
    expect(result.code, result.stderr).toBe(0);
    const { made, consumed } = lastJson<{ made: Seen; consumed: Seen }>(result.stdout);
    expect(made.ip).toBe(a.address);
    expect(consumed.ip).toBe(b.address);
    expect(made.size).toBe(OBJECT_BYTES);
    expect(consumed).toEqual({ ...made, ip: b.address });
  });

  test('a driver on the cluster side calls an actor pinned on each provider', async () => {
    const ids = providers.map((p) => p.id);
    const result = await cluster.driver(`
import json, ray
ray.init(address="auto", logging_level="ERROR")

@ray.remote(num_cpus=0.25)
class Tally:
    def __init__(self):
        self.total = 0
    def add(self, n):
        self.total += n
        return self.total
    def where(self):
        return ray.util.get_node_ip_address()

tallies = [Tally.options(resources={f"provider:{pid}": 0.01}).remote() for pid in ${JSON.stringify(ids)}]
totals = [ray.get([t.add.remote(n) for n in range(1, 11)])[-1] for t in tallies]
print(json.dumps({"where": ray.get([t.where.remote() for t in tallies]), "totals": totals}))
`);
    expect(result.code, result.stderr).toBe(0);
    const { where, totals } = lastJson<{ where: string[]; totals: number[] }>(result.stdout);
    expect(where).toEqual(providers.map((p) => p.address));
    expect(totals).toEqual([55, 55]);
  });
});

interface Seen {
  size: number;
  sha256: string;
  ip: string;
}
