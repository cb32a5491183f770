import {
  ExitCode,
  GATEWAY_DEFAULT_PORT,
  GATEWAY_SYNC_SECONDS,
  TUNNEL_PUBLIC_KEY_FILE,
  TUNNEL_SILENT_AFTER_SECONDS,
} from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { connectsFromNetns } from './support/home-network.js';
import { OverlayCluster, type OverlayProvider, recordMeasurement } from './support/overlay-cluster.js';
import { docker, run, waitFor } from './support/run.js';

/**
 * The overlay's faults and what it promises after each: a path that goes quiet says so and heals, a restarted
 * tunnel or gateway comes back with the same identities, a revoked provider is cut off, and a key the manager never
 * registered gets nothing. The gateway's network namespace outlives the gateway container (a holder owns it), as on
 * an operator's head host with host networking, so a gateway restart does not take the head's network with it.
 */
const cluster = new OverlayCluster({ gatewayNetnsHolder: true });
let provider: OverlayProvider;
let providerId: string;
let publicKey: string;
let headNodeManagerPort: number;
let overlayAddress: string;
const GCS_PORT = 6379;
/** Bounds for recovery on a loaded 2-core machine (Ray may have to rejoin, or restart its node, after a fault). */
const TUNNEL_UP_WITHIN_MS = 120_000;
const TASKS_AGAIN_WITHIN_MS = 300_000;

/** Runs one small task pinned to the provider, retrying until it runs; returns the address it ran on. */
function taskRunsAgain(what: string): Promise<string> {
  const script = `
import ray
ray.init(address="auto", logging_level="ERROR")
@ray.remote(num_cpus=0.5, resources={"provider:${providerId}": 0.01})
def where():
    return ray.util.get_node_ip_address()
print(ray.get(where.remote(), timeout=60))
`;
  return waitFor(
    `a task pinned to the provider to run ${what}`,
    async () => {
      const result = await cluster.driver(script, 120_000);
      return result.code === 0 ? result.stdout.trim().split('\n').pop() : undefined;
    },
    TASKS_AGAIN_WITHIN_MS,
    2000,
  );
}

async function contributingAgain(what: string) {
  const status = await provider.waitForStatus(
    `contributing again ${what}`,
    (s) => s.state === 'contributing' && s.tunnel?.state === 'up',
    TASKS_AGAIN_WITHIN_MS,
  );
  expect(status.registration.providerId).toBe(providerId);
  expect(status.tunnel?.address).toBe(overlayAddress);
  return status;
}

beforeAll(async () => {
  await cluster.start(1);
  const started = Date.now();
  provider = await cluster.startProvider(0);
  const status = await provider.waitForStatus('contributing', (s) => s.state === 'contributing', 300_000);
  recordMeasurement('one provider: containers started -> contributing over the overlay', {
    ms: Date.now() - started,
  });
  providerId = status.registration.providerId ?? '';
  overlayAddress = status.tunnel?.address ?? '';
  publicKey = await docker('exec', provider.tunnel, 'cat', TUNNEL_PUBLIC_KEY_FILE);
  const nodes = await cluster.driver(`
import json, ray
ray.init(address="auto", logging_level="ERROR")
print(json.dumps([n for n in ray.nodes() if n["Alive"] and n["NodeManagerAddress"] == "${cluster.gatewayOverlayAddress}"]))
`);
  const [head] = JSON.parse(nodes.stdout.trim().split('\n').pop() ?? '[]') as { NodeManagerPort: number }[];
  headNodeManagerPort = head?.NodeManagerPort ?? 0;
}, 600_000);

afterAll(async () => {
  await cluster.stop();
}, 120_000);

describe('overlay faults', () => {
  test('UDP to the gateway blocked for a while: the tunnel goes silent and says why, then comes back up', async () => {
    // Both ways, as a firewall that blocks the port does: the gateway's keepalives alone would keep the tunnel "up".
    const blocks = [
      ['-p', 'udp', '--dport', String(GATEWAY_DEFAULT_PORT), '-j', 'DROP'],
      ['-p', 'udp', '--sport', String(GATEWAY_DEFAULT_PORT), '-j', 'DROP'],
    ];
    for (const block of blocks) await docker('exec', provider.home.router, 'iptables', '-I', 'FORWARD', '1', ...block);
    const blockedAt = Date.now();
    let unblockedAt = 0;
    try {
      const down = await provider.waitForStatus(
        'the tunnel silent and the agent saying so',
        (s) => ['silent', 'unreachable'].includes(s.tunnel?.state ?? '') && s.lastError?.code === 'tunnel_down',
        (TUNNEL_SILENT_AFTER_SECONDS + 90) * 1000,
      );
      recordMeasurement('UDP blocked -> tunnel reported silent', { ms: Date.now() - blockedAt });
      expect(down.tunnel?.problem).toContain(`${cluster.gatewayAddress}:${GATEWAY_DEFAULT_PORT}`);
      expect(down.lastError?.message).toContain(down.tunnel?.problem ?? '');
      expect(down.state).not.toBe('contributing');
    } finally {
      for (const block of blocks) await docker('exec', provider.home.router, 'iptables', '-D', 'FORWARD', ...block);
      unblockedAt = Date.now();
    }
    await provider.waitForTunnel('up', TUNNEL_UP_WITHIN_MS);
    const tunnelUp = Date.now();
    const status = await contributingAgain('after UDP is let through');
    expect(status.lastError?.code).not.toBe('tunnel_down');
    expect(await taskRunsAgain('after UDP is let through')).toBe(overlayAddress);
    recordMeasurement('UDP unblocked -> tunnel up / task ran', {
      tunnelUpMs: tunnelUp - unblockedAt,
      taskMs: Date.now() - unblockedAt,
    });
  }, 600_000);

  test("the provider's tunnel container crashed (kill -9): both containers come back by themselves as the same provider", async () => {
    const inspect = (name: string, format: string) => docker('inspect', '-f', format, name);
    const tunnelStartedBefore = await inspect(provider.tunnel, '{{.State.StartedAt}}');
    const agentRestartsBefore = Number(await inspect(provider.name, '{{.RestartCount}}'));
    // A crash, not `docker kill` (Docker counts that as a stop by hand and does not restart the container).
    const pid = Number(await inspect(provider.tunnel, '{{.State.Pid}}'));
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    // Its restart policy starts it again, in a new network namespace; a home router hands that its default route
    // (DHCP), which here the test does.
    await waitFor(
      'the tunnel container to be started again by its restart policy',
      async () => {
        const [running, startedAt] = (await inspect(provider.tunnel, '{{.State.Running}} {{.State.StartedAt}}')).split(
          ' ',
        );
        return running === 'true' && startedAt !== tunnelStartedBefore ? true : undefined;
      },
      60_000,
    );
    await cluster.net.routeViaRouter(provider.tunnel, provider.home);
    // The agent was left in the old namespace (only loopback): it sees the tunnel report another namespace, exits
    // with tunnelNamespaceGone, and its own restart policy starts it inside the new one. No controller involved.
    await waitFor(
      'the agent container to restart itself into the new namespace',
      async () => (Number(await inspect(provider.name, '{{.RestartCount}}')) > agentRestartsBefore ? true : undefined),
      120_000,
    );
    const agentLog = (await run('docker', ['logs', provider.name])).stdout;
    expect(agentLog).toContain(`"exitCode":${ExitCode.tunnelNamespaceGone}`);
    await provider.restarted();
    await contributingAgain('after the tunnel container was killed');
    expect(await docker('exec', provider.tunnel, 'cat', TUNNEL_PUBLIC_KEY_FILE)).toBe(publicKey);
    expect(await taskRunsAgain('after the tunnel container was killed')).toBe(overlayAddress);
    recordMeasurement('tunnel killed -> contributing and a task ran', { ms: Date.now() - killedAt });
    const listed = (await cluster.providers()).filter((p) => p.overlayAddress === overlayAddress);
    expect(listed.map((p) => p.providerId)).toEqual([providerId]);
  }, 600_000);

  test('the gateway container restarted: same gateway key, the tunnel handshakes again, tasks run', async () => {
    const gatewayKey = await cluster.gatewayPublicKey();
    const restartedAt = Date.now();
    await docker('restart', cluster.gateway);
    expect(await cluster.waitForGatewayInterface(60_000)).toBe(cluster.gatewayOverlayAddress);
    expect(await cluster.gatewayPublicKey()).toBe(gatewayKey);
    await waitFor(
      'the restarted gateway to admit the provider again',
      async () => ((await cluster.gatewayPeers()).includes(publicKey) ? true : undefined),
      30_000,
    );
    // A handshake after the restart: the provider's tunnel found the new gateway process, not a stale session.
    const status = await provider.waitForStatus(
      'a handshake with the restarted gateway',
      (s) => s.tunnel?.state === 'up' && Date.parse(s.tunnel.lastHandshakeAt ?? '') >= restartedAt - 1000,
      TUNNEL_UP_WITHIN_MS,
    );
    const handshakeAt = Date.now();
    expect(status.registration.providerId).toBe(providerId);
    await contributingAgain('after the gateway restarted');
    expect(await taskRunsAgain('after the gateway restarted')).toBe(overlayAddress);
    recordMeasurement('gateway restarted -> handshake / task ran', {
      handshakeMs: handshakeAt - restartedAt,
      taskMs: Date.now() - restartedAt,
    });
  }, 600_000);

  test('a peer with a key the manager never registered gets no handshake and no TCP through the gateway', async () => {
    const prefix = cluster.gatewayOverlayAddress.split('.').slice(0, 3).join('.');
    const rogue = await cluster.startRogueTunnel(0, 11, `${prefix}.250`);
    const rogueKey = await docker('exec', rogue, 'wg', 'show', 'raywg0', 'public-key');
    expect(rogueKey).not.toBe(publicKey);
    // Each attempt takes its timeout; meanwhile the rogue sends a handshake initiation every 5 s.
    expect(await connectsFromNetns(rogue, cluster.gatewayOverlayAddress, GCS_PORT)).toBe(false);
    expect(headNodeManagerPort).toBeGreaterThan(0);
    expect(await connectsFromNetns(rogue, cluster.gatewayOverlayAddress, headNodeManagerPort)).toBe(false);
    const [, handshake] = (await docker('exec', rogue, 'wg', 'show', 'raywg0', 'latest-handshakes')).split(/\s+/);
    const [, rx, tx] = (await docker('exec', rogue, 'wg', 'show', 'raywg0', 'transfer')).split(/\s+/);
    expect(handshake).toBe('0');
    expect(rx).toBe('0');
    // It did send: the initiations left its home and were dropped at the gateway.
    expect(Number(tx)).toBeGreaterThan(0);
    expect(await cluster.gatewayPeers()).not.toContain(rogueKey);
    // The registered provider in the same home still gets through.
    expect(await connectsFromNetns(provider.tunnel, cluster.gatewayOverlayAddress, GCS_PORT)).toBe(true);
  }, 300_000);

  test('the manager revokes the provider: its peer leaves the gateway and no Ray port of the head answers it', async () => {
    const heartbeatSeconds = (await provider.status()).heartbeat.intervalSeconds;
    expect(await cluster.gatewayPeers()).toContain(publicKey);
    const ports = [GCS_PORT, headNodeManagerPort];
    for (const port of ports)
      expect(await connectsFromNetns(provider.tunnel, cluster.gatewayOverlayAddress, port), `port ${port}`).toBe(true);

    const revoked = await cluster.managerPost(`/api/providers/${providerId}/revoke`, cluster.adminToken);
    const revokedAt = Date.now();
    expect(revoked.status, revoked.text).toBe(200);
    await waitFor(
      "the provider's peer to leave the gateway",
      async () => ((await cluster.gatewayPeers()).includes(publicKey) ? undefined : true),
      60_000,
      200,
    );
    const droppedMs = Date.now() - revokedAt;
    recordMeasurement('revoked -> peer gone from the gateway', { ms: droppedMs });
    // The next sync, then one heartbeat interval; room for `docker exec` on a loaded machine.
    expect(droppedMs).toBeLessThan((GATEWAY_SYNC_SECONDS + heartbeatSeconds) * 1000 + 10_000);

    for (const port of ports)
      expect(await connectsFromNetns(provider.tunnel, cluster.gatewayOverlayAddress, port), `port ${port}`).toBe(false);
    const listed = (await cluster.providers()).find((p) => p.providerId === providerId);
    expect(listed?.revokedAt).not.toBeNull();
  }, 300_000);
});
