import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { z } from 'zod';
import { docker, mustRun } from '../../lib/util.js';
import type { Layer } from './schema.js';

/** What `docker save` (Docker 20.10's format) writes beside the layers: manifest.json and the image config. */
const Manifest = z.array(z.object({ Config: z.string(), Layers: z.array(z.string()) })).length(1);
const Config = z.object({
  rootfs: z.object({ diff_ids: z.array(z.string()) }),
  history: z.array(z.object({ created_by: z.string().optional(), empty_layer: z.boolean().optional() })),
});

/** Bytes of a file gzip-compressed at level 6 (Go's gzip default, which `docker push` uses), streamed. */
async function gzipBytes(file: string): Promise<number> {
  let total = 0;
  const gzip = createGzip({ level: 6 });
  gzip.on('data', (chunk: Buffer) => {
    total += chunk.length;
  });
  await new Promise<void>((resolve, reject) => {
    gzip.on('end', resolve);
    gzip.on('error', reject);
    createReadStream(file).on('error', reject).pipe(gzip);
  });
  return total;
}

/** Each layer's tar and gzip size, bottom to top, from `docker save` unpacked into `dir` (removed after). */
export async function layersOf(imageId: string, dir: string): Promise<{ layers: Layer[]; diffIds: number }> {
  await mkdir(dir, { recursive: true });
  try {
    const archive = join(dir, 'image.tar');
    await mustRun('docker', ['save', '-o', archive, imageId], { timeoutMs: 600_000 });
    await mustRun('tar', ['-xf', archive, '-C', dir], { timeoutMs: 600_000 });
    await rm(archive);
    const [manifest] = Manifest.parse(JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')));
    if (manifest === undefined) throw new Error('docker save wrote no manifest entry');
    const config = Config.parse(JSON.parse(await readFile(join(dir, manifest.Config), 'utf8')));
    // The history's non-empty steps are the layers, in the same order (the image spec's rule).
    const steps = config.history.filter((step) => !step.empty_layer).map((step) => step.created_by ?? '');
    const layers: Layer[] = [];
    for (const [index, file] of manifest.Layers.entries()) {
      const path = join(dir, file);
      const { size } = await stat(path);
      layers.push({ createdBy: cleanStep(steps[index] ?? ''), tarBytes: size, gzipBytes: await gzipBytes(path) });
    }
    return { layers, diffIds: config.rootfs.diff_ids.length };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `/bin/sh -c #(nop) COPY ...` → `COPY ...`; build arguments (`|1 PIP_INDEX_URL=... /bin/sh -c`) dropped. */
export function cleanStep(createdBy: string): string {
  return createdBy
    .replace(/^\|\d+ (\S+=\S* )*/, '')
    .replace(/^\/bin\/sh -c (#\(nop\)\s*)?/, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Every file and folder of at least 1 MiB in the image's root file system, biggest first. */
export async function largePaths(imageId: string): Promise<Array<{ path: string; bytes: number }>> {
  const out = await docker(
    'run',
    '--rm',
    '--network=none',
    '--user=0',
    '--entrypoint=sh',
    imageId,
    '-c',
    // -x: the root only (not /proc, /sys, /dev); a walk counts each inode once.
    'du -x -a -k / 2>/dev/null | awk -F "\t" "\\$1 >= 1024"',
  );
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [kib, path] = line.split('\t');
      return { path: path ?? '', bytes: Number(kib) * 1024 };
    })
    .sort((a, b) => b.bytes - a.bytes);
}

/** `python3 -c 'import ray'` timed by hyperfine (the host's, mounted read-only) inside a hardened container. */
export async function importRaySeconds(imageId: string, runs: number): Promise<number[]> {
  const out = await mustRun(
    'docker',
    [
      'run',
      '--rm',
      '--network=none',
      '--read-only',
      '--tmpfs=/tmp:rw,exec,size=64m',
      '--user=1000:1000',
      '--cap-drop=ALL',
      '--security-opt=no-new-privileges',
      '-v',
      '/usr/bin/hyperfine:/usr/local/bin/hyperfine:ro',
      '--entrypoint=sh',
      imageId,
      '-c',
      `hyperfine -N --style=none --warmup 2 --runs ${runs} --export-json /tmp/h.json "python3 -c 'import ray'" >/dev/null && cat /tmp/h.json`,
    ],
    { timeoutMs: 600_000 },
  );
  const parsed = z
    .object({ results: z.array(z.object({ times: z.array(z.number()) })).length(1) })
    .parse(JSON.parse(out));
  return parsed.results[0]?.times ?? [];
}
