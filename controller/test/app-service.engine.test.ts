import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { StatusView } from '@ray-agent/protocol';
import { afterAll, describe, expect, test } from 'vitest';
import { type AppService, createAppService } from '../src/app/app-service.js';
import { TokenVault } from '../src/app/token-vault.js';
import { DockerEngine } from '../src/engine/docker-engine.js';
import { SecondDockerd } from './support/second-dockerd.js';
import { testKeychainCodec } from './support/test-keychain-codec.js';

const dockerd = new SecondDockerd();
let service: AppService | undefined;

afterAll(async () => {
  await service?.shutdown();
  await dockerd.remove();
});

describe('the app service while the Docker Engine comes and goes (a second dockerd of the test)', () => {
  test('engine missing, then up, then stopped mid-run: a clear state each time, recovery on its own, no crash', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rap-app-engine-'));
    const views: StatusView[] = [];
    service = createAppService({
      settingsDir: dir,
      vault: new TokenVault(dir, testKeychainCodec()),
      engine: new DockerEngine(dockerd.endpoint(), { timeoutMs: 2000 }),
      containerName: `rap-app-engine-${process.pid}`,
      pollIntervalMs: 200,
    });
    service.onStatus((view) => views.push(view));
    const phase = async () => (await service?.['status:get']())?.phase;

    await expect.poll(phase, { timeout: 60_000 }).toBe('docker-stopped');
    const stopped = await service['status:get']();
    expect(stopped.headline).not.toBe('');
    expect(stopped.detail).not.toBeNull();

    dockerd.start();
    await expect.poll(phase, { timeout: 90_000, interval: 500 }).toBe('off');

    await dockerd.stop('SIGKILL');
    await expect.poll(phase, { timeout: 30_000, interval: 500 }).toBe('docker-stopped');
    // The window still answers while Docker is gone: settings and token state do not need the engine.
    expect((await service['settings:get']()).contribute).toBe(false);
    expect(await service['token:get-state']()).toMatchObject({ stored: false });

    dockerd.start();
    await expect.poll(phase, { timeout: 90_000, interval: 500 }).toBe('off');
    const phases = views.map((view) => view.phase).filter((p, i, all) => p !== all[i - 1]);
    expect(phases).toEqual(['docker-stopped', 'off', 'docker-stopped', 'off']);
  }, 300_000);
});
