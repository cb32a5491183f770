import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type OverlayConfig, type TunnelState, TunnelStatusFile } from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Commands } from '../src/commands.js';
import { GatewayClient } from '../src/gateway-client.js';
import { GatewayLoop } from '../src/gateway-loop.js';
import { addrSync, linkSetUp } from '../src/ip.js';
import { generateKeyPair } from '../src/keys.js';
import { createLogger } from '../src/log.js';
import { parseWgDump, wgDump, wgSetInterface, wgSetPeer } from '../src/wg.js';
import { WireguardGo } from '../src/wireguard-go.js';
import { NetnsLab, netnsSkipReason } from './support/netns.js';
import { StandInManager } from './support/stand-in-manager.js';
import { tcpPong, tcpServer } from './support/tcp.js';
import { makeTls } from './support/tls.js';

const skip = netnsSkipReason();
const TOKEN = 'gateway-token-for-this-test-0123456789';

/** Polls until `check` returns a value (not undefined), or fails naming what it waited for. */
async function until<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

// A hub (the gateway, in its own namespace, syncing with a stand-in manager over real TLS), a provider whose tunnel
// loop runs as its own process, and a rogue peer with a key the manager never listed; each in its own namespace,
// joined to the hub by a veth pair. Everything is real wireguard-go, wg, ip and iptables.
describe.skipIf(skip !== undefined)(`overlay in network namespaces${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const lab = new NetnsLab();
  const dir = mkdtempSync(join(tmpdir(), 'tunnel-netns-'));
  const providerDir = join(dir, 'provider');
  const logger = createLogger('test', 'warn');
  let hub: string;
  let provider: string;
  let rogueNs: string;
  let cluster: string;
  let manager: StandInManager;
  let gateway: GatewayLoop;
  let gatewayKey: string;
  let providerKey: string;
  let rogueKey: string;
  let child: ChildProcess | undefined;
  let rogue: WireguardGo | undefined;
  const servers: ChildProcess[] = [];
  const hubIface = lab.iface('wgg');
  const providerIface = lab.iface('wgp');
  const rogueIface = lab.iface('wgr');
  const seen: TunnelState[] = [];

  const overlay = (address: string): OverlayConfig => ({
    address,
    network: '100.96.0.0/16',
    gatewayAddress: '100.96.0.1',
    gatewayPublicKey: gatewayKey,
    gatewayEndpoint: '10.251.1.1:51820',
    routes: ['100.96.0.0/16'],
    gcsAddress: '100.96.0.1:6379',
  });
  const writeOverlay = (value: OverlayConfig | null) =>
    writeFileSync(
      join(providerDir, 'overlay.json'),
      JSON.stringify({ schemaVersion: 1, overlay: value, writtenAt: new Date().toISOString() }),
    );
  const status = () => {
    try {
      const file = TunnelStatusFile.parse(JSON.parse(readFileSync(join(providerDir, 'status.json'), 'utf8')));
      if (seen[seen.length - 1] !== file.report.state) seen.push(file.report.state);
      return file;
    } catch {
      return undefined;
    }
  };
  const untilState = (state: TunnelState, extra: (s: TunnelStatusFile) => boolean = () => true) =>
    until(`tunnel state ${state}`, () => {
      const s = status();
      return s && s.report.state === state && extra(s) ? s : undefined;
    });
  const startProvider = () => {
    const log = createWriteStream(join(dir, 'provider.log'), { flags: 'a' });
    const script = join(import.meta.dirname, 'support', 'provider-loop-child.ts');
    child = spawn(process.execPath, ['--import', 'tsx', script, provider, providerIface, providerDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    return child;
  };
  const hubPeers = async () => (await wgDump(new Commands(hub), hubIface)).peers;
  const ifindex = (ns: string, iface: string) =>
    (JSON.parse(lab.exec(ns, 'ip', ['-j', 'link', 'show', 'dev', iface])) as { ifindex: number }[])[0]?.ifindex;

  beforeAll(async () => {
    hub = lab.ns('hub');
    provider = lab.ns('prov');
    rogueNs = lab.ns('rogue');
    lab.link(hub, '10.251.1.1/30', provider, '10.251.1.2/30', 'vp');
    lab.link(hub, '10.251.2.1/30', rogueNs, '10.251.2.2/30', 'vr');
    // A cluster host behind the gateway, on two networks of which only the first is given to the gateway as a route.
    cluster = lab.ns('clu');
    lab.link(hub, '10.251.3.1/30', cluster, '10.251.3.2/30', 'vc');
    lab.exec(hub, 'ip', ['addr', 'add', '10.251.4.1/30', 'dev', lab.iface('vca')]);
    lab.exec(cluster, 'ip', ['addr', 'add', '10.251.4.2/30', 'dev', lab.iface('vcb')]);
    lab.exec(cluster, 'ip', ['route', 'add', '100.96.0.0/16', 'via', '10.251.3.1']);
    const tls = makeTls(dir);
    manager = new StandInManager(tls, TOKEN);
    const url = await manager.start();
    gateway = new GatewayLoop({
      manager: new GatewayClient(url, TOKEN, tls.caFile),
      endpoint: '10.251.1.1:51820',
      listenPort: 51820,
      routes: ['10.251.3.0/30'],
      iface: hubIface,
      commands: new Commands(hub),
      logger,
      privateKeyFile: join(dir, 'gateway-private.key'),
      publicKeyFile: join(dir, 'gateway-public.key'),
    });
    await gateway.start();
    gatewayKey = gateway.publicKey;
    await until('the first sync', () => manager.lastRequest);
    mkdirSync(providerDir);
  }, 60_000);

  afterAll(async () => {
    child?.kill('SIGKILL');
    for (const server of servers) server.kill('SIGKILL');
    await rogue?.stop().catch(() => {});
    await gateway?.stop().catch(() => {});
    await manager?.close();
    lab.cleanup();
    if (!process.env.KEEP_TUNNEL_TEST_DIR) rmSync(dir, { recursive: true, force: true });
  });

  it('the gateway reports its key, endpoint and routes, and sets its overlay address', async () => {
    expect(manager.lastRequest).toMatchObject({
      publicKey: gatewayKey,
      endpoint: '10.251.1.1:51820',
      routes: ['10.251.3.0/30'],
    });
    await until('the gateway address', () =>
      lab.exec(hub, 'ip', ['-4', 'addr', 'show', 'dev', hubIface]).includes('100.96.0.1/16') ? true : undefined,
    );
  });

  it('a provider not yet admitted stays connecting; once the manager lists its key the tunnel comes up', async () => {
    writeOverlay(overlay('100.96.0.2'));
    startProvider();
    providerKey = await until('the published public key', () => {
      try {
        return readFileSync(join(providerDir, 'public.key'), 'utf8').trim();
      } catch {
        return undefined;
      }
    });
    const connecting = await untilState('connecting');
    expect(connecting.report).toMatchObject({
      address: '100.96.0.2',
      gatewayEndpoint: '10.251.1.1:51820',
      problem: null,
    });
    // The rogue dials the same gateway with a key nobody listed; it starts now so it has tried for as long as the
    // provider has, once the provider is up.
    rogue = new WireguardGo(new Commands(rogueNs), rogueIface);
    await rogue.start();
    const rogueCommands = new Commands(rogueNs);
    const rogueKeyFile = join(dir, 'rogue.key');
    const roguePair = generateKeyPair();
    rogueKey = roguePair.publicKey;
    writeFileSync(rogueKeyFile, `${roguePair.privateKey}\n`, { mode: 0o600 });
    await wgSetInterface(rogueCommands, rogueIface, rogueKeyFile);
    await wgSetPeer(rogueCommands, rogueIface, {
      publicKey: gatewayKey,
      endpoint: '10.251.2.1:51820',
      allowedIps: ['100.96.0.0/16'],
      persistentKeepalive: 10,
    });
    await linkSetUp(rogueCommands, rogueIface, 1420);
    await addrSync(rogueCommands, rogueIface, ['100.96.0.9/32']);
    lab.exec(rogueNs, 'ip', ['route', 'add', '100.96.0.0/16', 'dev', rogueIface]);

    manager.peers = [{ providerId: 'p-1', publicKey: providerKey, address: '100.96.0.2' }];
    const up = await untilState('up');
    expect(up.report.lastHandshakeAt).not.toBeNull();
    expect(up.report.rxBytes).toBeGreaterThan(0);
    expect(seen.slice(seen.indexOf('connecting'))).toEqual(['connecting', 'up']);
  });

  it('TCP works across the overlay both ways, and the gateway admits the provider only from its own address', async () => {
    servers.push(await tcpServer(hub, '100.96.0.1', 7001));
    servers.push(await tcpServer(provider, '100.96.0.2', 7002));
    expect(await tcpPong(provider, '100.96.0.1', 7001)).toBe(true);
    expect(await tcpPong(hub, '100.96.0.2', 7002)).toBe(true);
    const peer = (await hubPeers()).find((p) => p.publicKey === providerKey);
    expect(peer).toMatchObject({ allowedIps: ['100.96.0.2/32'], persistentKeepalive: 10 });
    // What the gateway saw goes back to the manager.
    const reported = await until('a peer report with a handshake', () =>
      manager.lastRequest?.peers.find((p) => p.publicKey === providerKey && p.lastHandshakeAt !== null),
    );
    expect(reported.rxBytes).toBeGreaterThan(0);
  });

  it('the peer with an unlisted key gets no handshake and nothing through', async () => {
    expect(await tcpPong(rogueNs, '100.96.0.1', 7001, 3_000)).toBe(false);
    const rogueDump = await wgDump(new Commands(rogueNs), rogueIface);
    expect(rogueDump.peers[0]?.latestHandshake).toBe(0);
    expect(rogueDump.peers[0]?.txBytes).toBeGreaterThan(0); // it did try
    expect((await hubPeers()).map((p) => p.publicKey)).toEqual([providerKey]);
  });

  it('once admitted, the second peer reaches the provider over the overlay, but nothing else through the gateway', async () => {
    manager.peers = [
      { providerId: 'p-1', publicKey: providerKey, address: '100.96.0.2' },
      { providerId: 'p-2', publicKey: rogueKey, address: '100.96.0.9' },
    ];
    expect(
      await until('overlay to overlay', async () =>
        (await tcpPong(rogueNs, '100.96.0.2', 7002, 2_000)) ? true : undefined,
      ),
    ).toBe(true);
    // Through the gateway, the overlay reaches the cluster's given route (10.251.3.0/30) and nothing else, even on
    // the same cluster host (10.251.4.0/30 is not a given route).
    servers.push(await tcpServer(cluster, '0.0.0.0', 7003));
    const rogueCommands = new Commands(rogueNs);
    await wgSetPeer(rogueCommands, rogueIface, {
      publicKey: gatewayKey,
      allowedIps: ['100.96.0.0/16', '10.251.3.0/30', '10.251.4.0/30'],
      persistentKeepalive: 10,
    });
    for (const net of ['10.251.3.0/30', '10.251.4.0/30'])
      lab.exec(rogueNs, 'ip', ['route', 'add', net, 'dev', rogueIface, 'src', '100.96.0.9']);
    expect(await tcpPong(rogueNs, '10.251.3.2', 7003)).toBe(true);
    expect(await tcpPong(rogueNs, '10.251.4.2', 7003, 3_000)).toBe(false);
    expect(await tcpPong(hub, '10.251.4.2', 7003)).toBe(true);
    manager.peers = [{ providerId: 'p-1', publicKey: providerKey, address: '100.96.0.2' }];
    await until('the second peer to be removed', async () =>
      (await hubPeers()).map((p) => p.publicKey).join() === providerKey ? true : undefined,
    );
  });

  it('the real `wg show dump` output parses into the typed peer', async () => {
    const text = lab.exec(hub, 'wg', ['show', hubIface, 'dump']);
    const dump = parseWgDump(text);
    expect(dump.publicKey).toBe(gatewayKey);
    expect(dump.listenPort).toBe(51820);
    const peer = dump.peers[0];
    expect(peer?.endpoint).toMatch(/^10\.251\.1\.2:\d+$/);
    expect(peer?.latestHandshake).toBeGreaterThan(Date.now() / 1000 - 300);
    expect(peer?.txBytes).toBeGreaterThan(0);
  });

  it('a new address is applied in place, without restarting wireguard-go', async () => {
    const before = ifindex(provider, providerIface);
    manager.peers = [{ providerId: 'p-1', publicKey: providerKey, address: '100.96.0.3' }];
    writeOverlay(overlay('100.96.0.3'));
    await untilState('up', (s) => s.report.address === '100.96.0.3');
    await until('the gateway to admit the new address', async () =>
      (await hubPeers())[0]?.allowedIps[0] === '100.96.0.3/32' ? true : undefined,
    );
    expect(lab.exec(provider, 'ip', ['-4', 'addr', 'show', 'dev', providerIface])).toContain('100.96.0.3/32');
    expect(await tcpPong(provider, '100.96.0.1', 7001)).toBe(true);
    expect(ifindex(provider, providerIface)).toBe(before);
  });

  it('while the manager fails, the gateway keeps its peers', async () => {
    manager.failWith = 503;
    await until('two failed syncs', () => (manager.failedRequests >= 2 ? true : undefined));
    expect((await hubPeers()).map((p) => p.publicKey)).toEqual([providerKey]);
    expect(await tcpPong(provider, '100.96.0.1', 7001)).toBe(true);
    manager.failWith = undefined;
  });

  it('kill -9 of the tunnel process: a restart comes back up from the files alone, with the same key', async () => {
    const old = child as ChildProcess;
    const gone = new Promise((resolve) => old.once('exit', resolve));
    old.kill('SIGKILL');
    await gone;
    const before = ifindex(provider, providerIface);
    expect(before).toBeDefined(); // the orphaned wireguard-go keeps the interface
    const restartedAt = Date.now();
    startProvider();
    await untilState('up', (s) => Date.parse(s.updatedAt) > restartedAt);
    expect(readFileSync(join(providerDir, 'public.key'), 'utf8').trim()).toBe(providerKey);
    expect(ifindex(provider, providerIface)).not.toBe(before);
    expect(await tcpPong(provider, '100.96.0.1', 7001)).toBe(true);
  });

  it('a provider the manager drops is removed at the gateway and cut off', async () => {
    manager.peers = [];
    await until('the peer to be removed', async () => ((await hubPeers()).length === 0 ? true : undefined));
    expect(await tcpPong(provider, '100.96.0.1', 7001, 3_000)).toBe(false);
  });

  it('overlay null removes the interface (state off); SIGTERM exits 0', async () => {
    writeOverlay(null);
    const off = await untilState('off');
    expect(off.report).toMatchObject({ address: null, problem: null });
    await until('the interface to go', () =>
      lab.exec(provider, 'ip', ['-j', 'link', 'show']).includes(providerIface) ? undefined : true,
    );
    writeOverlay(overlay('100.96.0.3'));
    await untilState('connecting');
    const running = child as ChildProcess;
    const exit = new Promise<number | null>((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(lab.exec(provider, 'ip', ['-j', 'link', 'show'])).not.toContain(providerIface);
  });
});
