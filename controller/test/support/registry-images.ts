import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { docker, dockerQuiet } from './docker-cli.js';

const run = promisify(execFile);

/**
 * Builds an image (classic builder: this engine has no BuildKit) from a Dockerfile text, with a layer of random
 * bytes so its layer is new to the engine (a pull of it downloads something). Returns its image ID.
 */
export async function buildImage(tag: string, dockerfile: string, options: { randomBytes?: number } = {}) {
  const context = mkdtempSync(path.join(tmpdir(), 'ra-update-image-'));
  try {
    writeFileSync(path.join(context, 'marker.bin'), randomBytes(options.randomBytes ?? 64 * 1024));
    writeFileSync(path.join(context, 'Dockerfile'), dockerfile);
    await run('docker', ['build', '-q', '-t', tag, context], {
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
      maxBuffer: 16 * 1024 * 1024,
    });
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  return imageId(tag);
}

export async function imageId(ref: string): Promise<string> {
  return docker(['image', 'inspect', '--format', '{{.Id}}', ref]);
}

export async function imageIdOrNull(ref: string): Promise<string | null> {
  return imageId(ref).catch(() => null);
}

/**
 * Publishes the local image `source` to the registry as `ref` the way a release would, without touching what `ref`
 * names on this engine: the local tag is put back where it was afterwards (the running agent's tag must not move
 * under the code being tested). With `forget`, the source is removed locally, so a pull of it is a real download.
 * Returns the pushed manifest digest.
 */
export async function publishAs(source: string, ref: string, options: { forget?: boolean } = {}): Promise<string> {
  const before = await imageIdOrNull(ref);
  await docker(['tag', source, ref]);
  const output = await docker(['push', ref]);
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(output)?.[1];
  if (digest === undefined) throw new Error(`docker push ${ref} printed no digest: ${output}`);
  if (before !== null) await docker(['tag', before, ref]);
  else await docker(['rmi', ref]);
  if (options.forget === true) {
    const repository = ref.slice(0, ref.lastIndexOf(':'));
    await dockerQuiet(['rmi', source]);
    await dockerQuiet(['rmi', `${repository}@${digest}`]);
  }
  return digest;
}
