import type { PullProgress } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  newerImageAvailable,
  parseImageRef,
  previousRef,
  pullImage,
  remoteDigest,
} from '../src/container/image-update.js';
import { resolveDockerEndpointFromProcess } from '../src/engine/docker-endpoint.js';
import { createDockerode } from '../src/engine/docker-engine.js';
import { docker, dockerQuiet, runPrefix } from './support/docker-cli.js';
import { freePort } from './support/free-port.js';
import { type LocalRegistry, startLocalRegistry } from './support/local-registry.js';
import { buildImage, imageId, publishAs } from './support/registry-images.js';

/** Against the real engine and Debian's docker-registry on loopback: real distribution inspects, real pulls. */
const prefix = runPrefix('update');
let registry: LocalRegistry;
let dockerode: Dockerode;
let ref: string;
const made: string[] = [];

beforeAll(async () => {
  registry = await startLocalRegistry();
  dockerode = createDockerode(resolveDockerEndpointFromProcess());
  ref = `${registry.address}/${prefix}:stable`;
  made.push(ref);
}, 120_000);

afterAll(async () => {
  await dockerQuiet(['rmi', '-f', ...made]);
  // Images pulled by digest carry no tag: found by repository.
  const repository = parseImageRef(ref).repository;
  const left = (await docker(['images', '-q', repository]).catch(() => '')).split('\n').filter(Boolean);
  if (left.length > 0) await dockerQuiet(['rmi', '-f', ...new Set(left)]);
  await registry?.stop();
});

describe('parseImageRef', () => {
  test.each([
    ['ray-agent:dev', { repository: 'ray-agent', tag: 'dev', digest: null }],
    ['ray-agent', { repository: 'ray-agent', tag: null, digest: null }],
    ['127.0.0.1:5000/ray-agent:stable', { repository: '127.0.0.1:5000/ray-agent', tag: 'stable', digest: null }],
    ['127.0.0.1:5000/ray-agent', { repository: '127.0.0.1:5000/ray-agent', tag: null, digest: null }],
    [
      `127.0.0.1:5000/a/b@sha256:${'a'.repeat(64)}`,
      { repository: '127.0.0.1:5000/a/b', tag: null, digest: `sha256:${'a'.repeat(64)}` },
    ],
  ])('%s', (image, expected) => {
    expect(parseImageRef(image)).toEqual(expected);
  });

  test('the previous image is kept under the same repository', () => {
    expect(previousRef('127.0.0.1:5000/ray-agent:stable')).toBe('127.0.0.1:5000/ray-agent:ray-agent-previous');
  });
});

describe('newerImageAvailable', () => {
  test('a tag that was never pulled or pushed is local: no registry is asked, no error', async () => {
    // Named after a registry that cannot answer (port of nothing): asking it would say "unreachable".
    const local = `127.0.0.1:${await freePort()}/${prefix}-local:dev`;
    made.push(local);
    await buildImage(local, 'FROM debian:bookworm-slim\nCOPY marker.bin /marker.bin\n');
    expect(await newerImageAvailable(dockerode, local)).toEqual({
      kind: 'local',
      image: local,
      sentence: 'no updates: the image is local',
    });
  });

  test('an image not on this computer, and one pinned by digest, have no updates', async () => {
    expect((await newerImageAvailable(dockerode, `${prefix}-absent:1`)).kind).toBe('absent');
    expect((await newerImageAvailable(dockerode, `${prefix}@sha256:${'0'.repeat(64)}`)).kind).toBe('pinned');
  });

  test('current, then newer after a release under the same tag (pulled by digest: the tag does not move), then rejected', async () => {
    const first = await buildImage(`${prefix}-v1`, 'FROM debian:bookworm-slim\nCOPY marker.bin /marker.bin\n');
    made.push(`${prefix}-v1`);
    const firstDigest = await publishAs(`${prefix}-v1`, ref);
    // The first release: pulled here (the tag names it, with its registry digest).
    await dockerQuiet(['rmi', ref]);
    await pullImage(dockerode, `${parseImageRef(ref).repository}@${firstDigest}`, () => {});
    await dockerQuiet(['tag', first, ref]);
    expect(await remoteDigest(dockerode, ref)).toBe(firstDigest);
    expect(await newerImageAvailable(dockerode, ref)).toMatchObject({ kind: 'current' });

    const second = await buildImage(`${prefix}-v2`, 'FROM debian:bookworm-slim\nCOPY marker.bin /marker.bin\n', {
      randomBytes: 4 * 1024 * 1024,
    });
    const secondDigest = await publishAs(`${prefix}-v2`, ref, { forget: true });
    const check = await newerImageAvailable(dockerode, ref);
    expect(check).toEqual({
      kind: 'newer',
      image: ref,
      digest: secondDigest,
      pullRef: `${registry.address}/${prefix}@${secondDigest}`,
      currentId: first,
      sentence: expect.stringContaining('is available'),
    });
    if (check.kind !== 'newer') return;

    const seen: PullProgress[] = [];
    const pulled = await pullImage(dockerode, check.pullRef, (progress) => seen.push(progress));
    expect(pulled).toBe(second);
    expect(seen.at(-1)).toMatchObject({ done: true, fraction: 1, error: null });
    expect(seen.at(-1)?.totalBytes).toBeGreaterThan(4 * 1024 * 1024);
    // The configured tag still names the running release.
    expect(await imageId(ref)).toBe(first);

    expect(await newerImageAvailable(dockerode, ref, { rejected: [secondDigest] })).toMatchObject({
      kind: 'rejected',
      digest: secondDigest,
    });
  });

  test('a registry that does not answer: unreachable, in a sentence, not a throw', async () => {
    await registry.stop();
    const check = await newerImageAvailable(dockerode, ref);
    expect(check.kind).toBe('unreachable');
    expect(check.sentence).toMatch(/^could not check for a newer .*connection refused/);
  });
});
