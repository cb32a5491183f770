/**
 * The files the agent shares with its tunnel container: the overlay config (0644, the tunnel container reads it as
 * root without DAC_OVERRIDE) and Ray's token (0600), both on the state volume, written atomically and only when the
 * manager's answer changed them; and the tunnel container's key and report, read with their freshness.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type ClusterAccess,
  OverlayConfigFile,
  TUNNEL_STATUS_STALE_AFTER_SECONDS,
  type TunnelStatusFile,
} from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterAccessStore, letTunnelIntoStateDir } from '../src/overlay/cluster-access-store.js';
import { joinTarget, needsRejoin } from '../src/overlay/join-target.js';
import { overlayPaths, readPublicKey, readTunnelStatus } from '../src/overlay/tunnel-files.js';
import { currentTunnel } from '../src/overlay/tunnel-report.js';
import { accessFor } from './fixtures/save-cluster-access-child.js';
import { bundleFixture, tempDir, tempDirForSuite } from './helpers.js';

const mode = (path: string) => statSync(path).mode & 0o777;
const TOKEN = 'PLANTED-ray-auth-token-0f1e2d3c4b5a';

function access(overrides: Partial<NonNullable<ClusterAccess['overlay']>> = {}, token: string | null = TOKEN) {
  const base = accessFor(5);
  return { overlay: { ...(base.overlay as NonNullable<ClusterAccess['overlay']>), ...overrides }, rayAuthToken: token };
}

function stateAndTunnel() {
  const dir = tempDir('overlay-files-');
  const stateDir = join(dir, 'state');
  const tunnelDir = join(dir, 'tunnel');
  mkdirSync(stateDir, { mode: 0o700 });
  mkdirSync(tunnelDir);
  return { stateDir, tunnelDir, paths: overlayPaths(stateDir, tunnelDir) };
}

describe('ClusterAccessStore', () => {
  it('round-trips the access through the state volume: overlay.json 0644 as OverlayConfigFile, the token 0600', () => {
    const { paths } = stateAndTunnel();
    const first = new ClusterAccessStore(paths, true);
    expect(first.load().access).toBeUndefined();
    first.save(access());
    expect(mode(paths.overlayConfigFile)).toBe(0o644);
    expect(mode(paths.rayAuthTokenFile)).toBe(0o600);
    expect(mode(join(paths.rayAuthTokenFile, '..'))).toBe(0o700);
    const file = OverlayConfigFile.parse(JSON.parse(readFileSync(paths.overlayConfigFile, 'utf8')));
    expect(file.overlay).toEqual(access().overlay);
    expect(file.writtenAt).toBe(first.configWrittenAt);
    // The token is in its own file only.
    expect(readFileSync(paths.overlayConfigFile, 'utf8')).not.toContain(TOKEN);
    expect(readFileSync(paths.rayAuthTokenFile, 'utf8').trim()).toBe(TOKEN);

    const restarted = new ClusterAccessStore(paths, true);
    expect(restarted.load()).toEqual({ access: access(), problems: [] });
    expect(restarted.configWrittenAt).toBe(file.writtenAt);
  });

  it('rewrites a file only when its part changed, and says which part did', () => {
    const { paths } = stateAndTunnel();
    let clock = Date.parse('2026-01-01T00:00:00.000Z');
    const tick = () => {
      clock += 1000;
      return new Date(clock);
    };
    const store = new ClusterAccessStore(paths, true, tick);
    expect(store.save(access())).toEqual({ overlay: true, token: true });
    const writtenAt = store.configWrittenAt;
    const inode = statSync(paths.overlayConfigFile).ino;
    const tokenInode = statSync(paths.rayAuthTokenFile).ino;

    expect(store.save(access())).toEqual({ overlay: false, token: false });
    expect(store.configWrittenAt).toBe(writtenAt);
    expect(statSync(paths.overlayConfigFile).ino).toBe(inode);
    expect(statSync(paths.rayAuthTokenFile).ino).toBe(tokenInode);

    expect(store.save(access({ gatewayPublicKey: randomKey() }))).toEqual({ overlay: true, token: false });
    expect(store.configWrittenAt).not.toBe(writtenAt);
    expect(statSync(paths.rayAuthTokenFile).ino).toBe(tokenInode);

    expect(store.save(access({ gatewayPublicKey: randomKey() }, `${TOKEN}-new`)).token).toBe(true);
    expect(store.save({ overlay: null, rayAuthToken: null })).toEqual({ overlay: true, token: true });
    expect(existsSync(paths.rayAuthTokenFile)).toBe(false);
    expect(OverlayConfigFile.parse(JSON.parse(readFileSync(paths.overlayConfigFile, 'utf8'))).overlay).toBeNull();
  });

  it('without a tunnel container keeps no overlay file, and still keeps the token', () => {
    const { paths } = stateAndTunnel();
    const store = new ClusterAccessStore(paths, false);
    store.save(access());
    expect(existsSync(paths.overlayConfigFile)).toBe(false);
    expect(store.access()).toEqual({ overlay: null, rayAuthToken: TOKEN });
    expect(new ClusterAccessStore(paths, false).load().access).toEqual({ overlay: null, rayAuthToken: TOKEN });
  });

  it('reports an unreadable file without echoing it, and writes it again from the next answer', () => {
    const { paths } = stateAndTunnel();
    writeFileSync(paths.overlayConfigFile, '{"schemaVersion":1,');
    mkdirSync(join(paths.rayAuthTokenFile, '..'), { mode: 0o700 });
    writeFileSync(paths.rayAuthTokenFile, 'short secret\n', { mode: 0o600 });
    const store = new ClusterAccessStore(paths, true);
    const { access: loaded, problems } = store.load();
    expect(loaded).toBeUndefined();
    expect(problems).toHaveLength(2);
    expect(problems.join(' ')).not.toContain('short secret');
    expect(store.save(access())).toEqual({ overlay: true, token: true });
  });

  it('opens a 0700 state directory to 0711 for the tunnel container, and leaves any other mode alone', () => {
    const { stateDir } = stateAndTunnel();
    expect(letTunnelIntoStateDir(stateDir)).toBe(true);
    expect(mode(stateDir)).toBe(0o711);
    chmodSync(stateDir, 0o750);
    expect(letTunnelIntoStateDir(stateDir)).toBe(false);
    expect(mode(stateDir)).toBe(0o750);
  });
});

describe('SIGKILL while saving the cluster access', () => {
  let suite: { dir: string; remove: () => void };
  let child: string;
  beforeAll(async () => {
    suite = tempDirForSuite('access-sigkill-');
    child = await bundleFixture('save-cluster-access-child', suite.dir);
  });
  afterAll(() => suite.remove());

  it('20 kills at random moments of a save loop: each file is the last saved or the one being saved, whole', async () => {
    const { stateDir, tunnelDir, paths } = stateAndTunnel();
    let kills = 0;
    while (kills < 20) {
      const reported = await new Promise<number[]>((resolve, reject) => {
        const proc = spawn(process.execPath, [child], {
          env: { STATE_DIR: stateDir, TUNNEL_DIR: tunnelDir },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        let armed = false;
        proc.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString('utf8');
          if (armed) return;
          armed = true;
          setTimeout(() => proc.kill('SIGKILL'), Math.random() * 30);
        });
        proc.on('error', reject);
        proc.on('close', () => resolve(out.split('\n').filter(Boolean).map(Number)));
      });
      kills += 1;
      const last = reported.at(-1) ?? 0;
      const loaded = new ClusterAccessStore(paths, true).load();
      expect(loaded.problems).toEqual([]);
      // The child numbers from 0 on each run: the file holds its last reported save or the next one.
      const candidates = [accessFor(last), accessFor(last + 1)];
      expect(candidates.map((c) => c.overlay)).toContainEqual(loaded.access?.overlay);
      expect(candidates.map((c) => c.rayAuthToken)).toContainEqual(loaded.access?.rayAuthToken);
      expect(mode(paths.overlayConfigFile)).toBe(0o644);
      expect(mode(paths.rayAuthTokenFile)).toBe(0o600);
    }
    // Temp files a kill left behind are never mistaken for the files themselves.
    expect(readdirSync(stateDir).filter((name) => !name.includes('.tmp-'))).toEqual(['overlay.json', 'secrets']);
  }, 120_000);
});

describe('the tunnel container files', () => {
  it('takes a WireGuard public key only', () => {
    const { paths } = stateAndTunnel();
    expect(readPublicKey(paths.publicKeyFile)).toMatchObject({ ok: false });
    writeFileSync(paths.publicKeyFile, 'not a key\n');
    expect(readPublicKey(paths.publicKeyFile)).toMatchObject({ ok: false });
    const key = randomKey();
    writeFileSync(paths.publicKeyFile, `${key}\n`);
    expect(readPublicKey(paths.publicKeyFile)).toEqual({ ok: true, value: key });
  });

  it('believes an `up` report only when it is fresh and about the config written', () => {
    const { paths } = stateAndTunnel();
    const now = new Date('2026-01-01T12:00:00.000Z');
    const writtenAt = '2026-01-01T11:59:00.000Z';
    const report = (configWrittenAt: string | null, ageSeconds: number): TunnelStatusFile => ({
      schemaVersion: 1,
      report: {
        state: 'up',
        address: '100.96.0.7',
        gatewayEndpoint: 'gateway.cluster.test:51820',
        lastHandshakeAt: now.toISOString(),
        rxBytes: 10,
        txBytes: 20,
        problem: null,
      },
      configWrittenAt,
      updatedAt: new Date(now.getTime() - ageSeconds * 1000).toISOString(),
    });
    const read = (file: TunnelStatusFile) => {
      writeFileSync(paths.statusFile, JSON.stringify(file));
      return currentTunnel(readTunnelStatus(paths.statusFile), writtenAt, now);
    };
    expect(currentTunnel(readTunnelStatus(paths.statusFile), writtenAt, now).state).toBe('starting');
    expect(read(report(writtenAt, 1))).toMatchObject({ state: 'up', problem: null, rxBytes: 10 });
    expect(read(report(writtenAt, TUNNEL_STATUS_STALE_AFTER_SECONDS + 1))).toMatchObject({
      state: 'error',
      problem: expect.stringContaining('stopped reporting'),
    });
    expect(read(report('2026-01-01T11:58:00.000Z', 1))).toMatchObject({
      state: 'starting',
      problem: expect.stringContaining('not applied'),
    });
    expect(read(report(null, 1)).state).toBe('starting');
  });
});

describe('where the node joins', () => {
  const direct = { gcs: { host: 'head.cluster.test', port: 6379 }, nodeIpAddress: undefined };
  const file = '/state/secrets/ray-auth-token';
  const target = (a: ClusterAccess | undefined) => joinTarget(direct, a, file);

  it('joins the overlay GCS as the overlay address, or RAY_HEAD directly', () => {
    expect(target(undefined)).toEqual({ overlay: false, ...direct, rayAuthTokenFile: undefined });
    expect(target({ overlay: null, rayAuthToken: TOKEN })).toEqual({
      overlay: false,
      ...direct,
      rayAuthTokenFile: file,
    });
    expect(target(access())).toEqual({
      overlay: true,
      gcs: { host: '100.96.0.1', port: 6379 },
      nodeIpAddress: access().overlay.address,
      rayAuthTokenFile: file,
    });
  });

  it('rejoins for a new overlay address, GCS address, mode or token, not for a new gateway key or endpoint', () => {
    const now = target(access());
    expect(needsRejoin(now, target(access({ address: '100.96.9.9' })))).toBe(true);
    expect(needsRejoin(now, target(access({ gcsAddress: '100.96.0.1:6380' })))).toBe(true);
    expect(needsRejoin(now, target({ overlay: null, rayAuthToken: TOKEN }))).toBe(true);
    expect(needsRejoin(now, target(access({}, null)))).toBe(true);
    expect(needsRejoin(now, target(access({ gatewayPublicKey: randomKey() })))).toBe(false);
    expect(needsRejoin(now, target(access({ gatewayEndpoint: 'gateway2.cluster.test:51821' })))).toBe(false);
  });
});

/** A WireGuard key's shape: base64 of 32 bytes. */
function randomKey(): string {
  return randomBytes(32).toString('base64');
}
