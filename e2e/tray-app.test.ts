import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_SETTINGS } from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type AppService, createAppService } from '../controller/src/app/app-service.js';
import { TokenVault } from '../controller/src/app/token-vault.js';
import { testKeychainCodec } from '../controller/test/support/test-keychain-codec.js';
import { expectPair, TestCluster } from './support/cluster.js';
import { openRenderer, type RendererSession } from './support/renderer-bridge.js';
import { docker, run } from './support/run.js';

/**
 * The tray app's window in headless Chromium, bridged to the REAL app service: real Docker Engine, real agent
 * container, real Ray head and manager over TLS. Only the OS keychain is stood in for (a test codec), because
 * Electron's safeStorage cannot run here.
 */
const cluster = new TestCluster();
const containerName = `rap-tray-${cluster.id}`;
/** The default settings make the pair: the agent and the tunnel container that owns its network namespace. */
const tunnelName = `${containerName}-tunnel`;
const settingsDir = mkdtempSync(join(tmpdir(), 'rap-tray-'));
const statusPort = 28765 + (process.pid % 1000);
let service: AppService;
let session: RendererSession;

const text = (id: string) => session.page.getByTestId(id).textContent();

beforeAll(async () => {
  await promisify(execFile)(process.execPath, ['renderer/build.mjs'], { cwd: join(import.meta.dirname, '..') });
  await cluster.start();
  writeFileSync(
    join(settingsDir, 'config.json'),
    JSON.stringify({
      ...DEFAULT_SETTINGS,
      clusterAddress: `ray://${cluster.head}:10001`,
      managerUrl: `https://${cluster.manager}:8443`,
      cpus: 1,
      memoryMiB: 3072,
      statusPort,
    }),
  );
  service = createAppService({
    settingsDir,
    vault: new TokenVault(settingsDir, testKeychainCodec()),
    containerName,
    managerCaFile: cluster.pki.caCert,
    network: cluster.network,
    extraEnv: { HEARTBEAT_INTERVAL: '2' },
    pollIntervalMs: 1000,
  });
  session = await openRenderer(service);
  service.onStatus((view) => void session.emit('status:changed', view));
  service.onPull((progress) => void session.emit('pull:progress', progress));
});

afterAll(async () => {
  await session?.close();
  await service?.shutdown();
  // The cluster keeps the logs of, and removes, the containers it tracks; then the pair's volumes are free.
  await cluster.track(containerName);
  await cluster.track(tunnelName);
  await cluster.stop();
  await run('docker', [
    'volume',
    'rm',
    '-f',
    `${containerName}-state`,
    `${containerName}-spill`,
    `${containerName}-tunnel`,
  ]);
});

describe('the window over the real controller', () => {
  test('the enrollment token pasted in Settings is stored encrypted, never in plain text', async () => {
    await session.page.getByTestId('tab-settings').click();
    await session.page.getByTestId('input-token').fill(`  ${cluster.enrollmentToken}\n`);
    await session.page.getByTestId('save-button').click();
    await expect.poll(() => service['token:get-state'](), { timeout: 60_000 }).toMatchObject({ stored: true });
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(join(settingsDir, 'token.enc'), 'utf8')).not.toContain(cluster.enrollmentToken);
  });

  test('turning "Contribute compute" on starts the real agent pair with the chosen limits; the page shows it registered and healthy', async () => {
    await session.page.getByTestId('tab-status').click();
    await session.page.locator('label.switch').click();
    await expect.poll(() => text('registration'), { timeout: 180_000, interval: 1000 }).toBe('Registered');
    await expect.poll(() => text('heartbeat'), { timeout: 60_000, interval: 1000 }).toMatch(/^Healthy/);
    expect(await text('provider-id')).toMatch(/^prv-/);
    const inspect = JSON.parse(await docker('inspect', containerName))[0];
    expect(inspect.HostConfig.NanoCpus).toBe(1e9);
    expect(inspect.HostConfig.Memory).toBe(3072 * 1024 ** 2);
    expect(inspect.HostConfig.MemorySwap).toBe(3072 * 1024 ** 2);
    await expectPair(containerName, { statusPort, network: cluster.network, secrets: [cluster.enrollmentToken] });
  });

  test('while real Ray tasks run, the page shows the running task count from the status endpoint', async () => {
    // Registered and healthy come before the Ray node has joined; tasks can run only once it has.
    await expect.poll(() => text('status-headline'), { timeout: 180_000, interval: 1000 }).toMatch(/^Contributing/);
    const driver = cluster.driver(`
import ray, time
ray.init(address="auto", logging_level="ERROR")
@ray.remote(num_cpus=0.25)
def work(i):
    time.sleep(15)
    return i
print(ray.get([work.remote(i) for i in range(3)]))
`);
    await expect.poll(() => text('task-count'), { timeout: 60_000, interval: 500 }).toBe('3');
    // What runs now, by the name Ray's worker titles give, and the policy in one sentence.
    await expect.poll(() => text('task-names'), { timeout: 30_000, interval: 500 }).toMatch(/work\D*3/);
    expect(await text('policy-sentence')).toMatch(/^Contributing/);
    await session.page.screenshot({
      path: join(import.meta.dirname, '..', 'docs', 'screenshot-status.png'),
      fullPage: true,
    });
    const result = await driver;
    expect(result.code, result.stderr).toBe(0);
    await expect.poll(() => text('task-count'), { timeout: 30_000, interval: 500 }).toBe('0');
  });

  test('more CPUs in Settings while contributing apply to the running container: same container, no restart', async () => {
    const [before] = JSON.parse(await docker('inspect', containerName));
    await session.page.getByTestId('tab-settings').click();
    await session.page.getByTestId('input-cpus').fill('2');
    await session.page.getByTestId('save-button').click();
    await expect
      .poll(async () => JSON.parse(await docker('inspect', containerName))[0].HostConfig.NanoCpus, {
        timeout: 60_000,
        interval: 500,
      })
      .toBe(2e9);
    const [after] = JSON.parse(await docker('inspect', containerName));
    expect(after.Id).toBe(before.Id);
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
    // Ray's own view followed: the agent's status says Ray schedules 2 CPUs.
    await expect
      .poll(async () => (await service['status:get']()).limits?.rayCpus, { timeout: 60_000, interval: 1000 })
      .toBe(2);
  });

  test('the history page over the real controller shows what this run gave', async () => {
    await session.page.getByTestId('tab-history').click();
    await expect.poll(() => session.page.getByTestId('page-history').isVisible(), { timeout: 10_000 }).toBe(true);
    // The sampling loop has seen the agent run tasks for a while: a 24 h view, not the empty sentence (the store
    // flushes at most once a minute, but the page reads the store's memory through history:get).
    const doc = await service['history:get']();
    expect(doc.hours.length).toBeGreaterThan(0);
    expect(doc.hours.some((hour) => hour.contributingSeconds > 0)).toBe(true);
    await expect
      .poll(() => session.page.locator('[data-testid="page-history"] canvas').count(), { timeout: 10_000 })
      .toBeGreaterThan(0);
  });

  test('a bad setting shows its message and changes nothing', async () => {
    const before = JSON.parse(await docker('inspect', containerName, tunnelName));
    await session.page.getByTestId('tab-settings').click();
    await session.page.getByTestId('input-clusterAddress').fill('http://not-a-ray-address');
    await session.page.getByTestId('save-button').click();
    await expect.poll(() => text('error-clusterAddress'), { timeout: 60_000 }).toMatch(/ray:\/\//);
    expect((await service['settings:get']()).clusterAddress).toBe(`ray://${cluster.head}:10001`);
    const after = JSON.parse(await docker('inspect', containerName, tunnelName));
    expect(after.map((c: { Id: string }) => c.Id)).toEqual(before.map((c: { Id: string }) => c.Id));
    expect(after.map((c: { State: { StartedAt: string } }) => c.State.StartedAt)).toEqual(
      before.map((c: { State: { StartedAt: string } }) => c.State.StartedAt),
    );
  });

  test('turning it off stops the agent gracefully, then its tunnel', async () => {
    await session.page.getByTestId('tab-status').click();
    await session.page.locator('label.switch').click();
    await expect.poll(() => text('status-headline'), { timeout: 90_000, interval: 500 }).toBe('Not contributing');
    const [inspect, tunnel] = JSON.parse(await docker('inspect', containerName, tunnelName));
    expect(inspect.State.Running).toBe(false);
    expect(inspect.State.ExitCode).toBe(0);
    expect(tunnel.State.Running).toBe(false);
    const provider = (await cluster.providers())[0];
    expect(provider?.lastState).toBe('stopped');
  });
});
