import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { PullProgress } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AgentContainer } from '../src/container/agent-container.js';
import { resolveDockerEndpointFromProcess } from '../src/engine/docker-endpoint.js';
import { createDockerode } from '../src/engine/docker-engine.js';
import { hasImage, ImageUnavailableError } from '../src/engine/image-pull.js';
import { docker, dockerQuiet } from './support/docker-cli.js';
import { type LocalRegistry, startLocalRegistry } from './support/local-registry.js';

/**
 * Real pulls with real progress from Debian's docker-registry on loopback. The pushed image is built FROM scratch
 * with two layers of random bytes, so no layer of it can already be on the engine (a retag of debian:bookworm-slim
 * would pull nothing: its layers are local).
 */
const MiB = 1024 ** 2;
let registry: LocalRegistry;
let dockerode: Dockerode;
let ref: string;
let repository: string;
const localOnly: string[] = [];

beforeAll(async () => {
  registry = await startLocalRegistry();
  dockerode = createDockerode(resolveDockerEndpointFromProcess());
  repository = `${registry.address}/rap-test-${randomBytes(3).toString('hex')}`;
  ref = `${repository}/layers:1`;
  const context = mkdtempSync(path.join(tmpdir(), 'rap-image-'));
  try {
    writeFileSync(path.join(context, 'a.bin'), randomBytes(16 * MiB));
    writeFileSync(path.join(context, 'b.bin'), randomBytes(8 * MiB));
    writeFileSync(path.join(context, 'Dockerfile'), 'FROM scratch\nCOPY a.bin /a.bin\nCOPY b.bin /b.bin\n');
    // The classic builder: this engine has no BuildKit.
    await promisify(execFile)('docker', ['build', '-q', '-t', ref, context], {
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
    });
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  await docker(['push', ref]);
  await docker(['rmi', ref]);
}, 120_000);

afterAll(async () => {
  await dockerQuiet(['rmi', '-f', ref, ...localOnly]);
  await registry?.stop();
});

describe('ensureImage through AgentContainer', () => {
  test('pulls with progress from 0 to done: totalBytes > 0, currentBytes never falls', async () => {
    const agent = new AgentContainer(dockerode, { name: 'rap-t-pull-unused' });
    const seen: PullProgress[] = [];
    const result = await agent.ensureImage(ref, (progress) => seen.push(progress), { pull: 'missing' });
    expect(result).toEqual({ image: ref, source: 'pulled', warning: null });
    expect(seen[0]).toMatchObject({ image: ref, currentBytes: 0, done: false, error: null });
    const last = seen.at(-1);
    expect(last).toMatchObject({ done: true, fraction: 1, error: null });
    // Two layers of 16 and 8 MiB of random bytes: gzip cannot shrink them.
    expect(last?.totalBytes).toBeGreaterThan(24 * MiB);
    expect(last?.currentBytes).toBe(last?.totalBytes);
    for (let index = 1; index < seen.length; index++)
      expect(seen[index]?.currentBytes).toBeGreaterThanOrEqual(seen[index - 1]?.currentBytes ?? 0);
    expect(await hasImage(dockerode, ref)).toBe(true);
  });

  test("'missing' does not pull an image that is here", async () => {
    const agent = new AgentContainer(dockerode, { name: 'rap-t-pull-unused' });
    const seen: PullProgress[] = [];
    const result = await agent.ensureImage(ref, (progress) => seen.push(progress));
    expect(result.source).toBe('local');
    expect(seen).toEqual([{ image: ref, currentBytes: 0, totalBytes: 0, fraction: 1, done: true, error: null }]);
  });

  test('a tag the registry does not have fails clearly', async () => {
    const agent = new AgentContainer(dockerode, { name: 'rap-t-pull-unused' });
    const missing = `${repository}/layers:does-not-exist`;
    const seen: PullProgress[] = [];
    const failure = agent.ensureImage(missing, (progress) => seen.push(progress));
    await expect(failure).rejects.toBeInstanceOf(ImageUnavailableError);
    await expect(failure).rejects.toThrow(`the image ${missing} was not found or access was denied`);
    expect(seen.at(-1)).toMatchObject({ done: false, error: expect.stringContaining('was not found') });
  });

  test("'always' falls back to the local copy when the pull fails, with a warning and no error shown", async () => {
    const agent = new AgentContainer(dockerode, { name: 'rap-t-pull-unused' });
    // Tagged here, never pushed: the registry answers 404.
    const local = `${repository}/local-only:1`;
    localOnly.push(local);
    await docker(['tag', ref, local]);
    const seen: PullProgress[] = [];
    const result = await agent.ensureImage(local, (progress) => seen.push(progress), { pull: 'always' });
    expect(result.source).toBe('local-after-failed-pull');
    expect(result.warning).toContain(`could not pull ${local}`);
    expect(result.warning).toContain('using the copy already on this computer');
    expect(seen.at(-1)).toMatchObject({ done: true, error: null });
  });

  test('an error event in the pull stream (a blob the registry lost) fails the pull, though the stream ends normally', async () => {
    const agent = new AgentContainer(dockerode, { name: 'rap-t-pull-unused' });
    const broken = `${repository}/broken:1`;
    localOnly.push(broken);
    // A fresh one-layer image, pushed, then its layer blob deleted from the registry's storage.
    const context = mkdtempSync(path.join(tmpdir(), 'rap-image-'));
    try {
      writeFileSync(path.join(context, 'c.bin'), randomBytes(2 * MiB));
      writeFileSync(path.join(context, 'Dockerfile'), 'FROM scratch\nCOPY c.bin /c.bin\n');
      await promisify(execFile)('docker', ['build', '-q', '-t', broken, context], {
        env: { ...process.env, DOCKER_BUILDKIT: '0' },
      });
    } finally {
      rmSync(context, { recursive: true, force: true });
    }
    await docker(['push', broken]);
    await docker(['rmi', broken]);
    const name = broken.slice(registry.address.length + 1, broken.lastIndexOf(':'));
    const manifest = (await (
      await fetch(`http://${registry.address}/v2/${name}/manifests/1`, {
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      })
    ).json()) as { layers: Array<{ digest: string }> };
    expect(manifest.layers).toHaveLength(1);
    const hex = manifest.layers[0]?.digest.replace('sha256:', '') ?? '';
    rmSync(path.join(registry.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data'));
    const seen: PullProgress[] = [];
    await expect(agent.ensureImage(broken, (progress) => seen.push(progress))).rejects.toThrow(
      `could not pull ${broken}: unknown blob`,
    );
    expect(seen.at(-1)).toMatchObject({ done: false, error: `could not pull ${broken}: unknown blob` });
  });
});
