import { docker, run } from '../lib/util.js';

export interface ImageLayer {
  sizeBytes: number;
  createdBy: string;
}

export interface ImageFigures {
  image: string;
  imageId: string;
  sizeBytes: number;
  layers: ImageLayer[];
  /** The base image's own size and the largest things in it and in the Ray venv (what each part costs). */
  base: { image: string; sizeBytes: number; largest: Array<{ path: string; bytes: number }> } | null;
  rayVenvLargest: Array<{ path: string; bytes: number }>;
  nodeBinaryBytes: number | null;
}

/** `du -s` of paths inside an image, biggest first (run with the image's own shell, no network). */
async function du(image: string, paths: string, top: number): Promise<Array<{ path: string; bytes: number }>> {
  const result = await run('docker', [
    'run',
    '--rm',
    '--network=none',
    '--entrypoint',
    'sh',
    image,
    '-c',
    `du -sk ${paths} 2>/dev/null | sort -rn | head -n ${top}`,
  ]);
  return result.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [kib, path] = line.split('\t');
      return { path: path ?? '', bytes: Number(kib) * 1024 };
    });
}

export async function imageSuite(image: string, imageId: string): Promise<ImageFigures> {
  const sizeBytes = Number(await docker('image', 'inspect', '-f', '{{.Size}}', imageId));
  const history = await docker(
    'history',
    '--no-trunc',
    '--human=false',
    '--format',
    '{{.Size}}\t{{.CreatedBy}}',
    imageId,
  );
  const layers = history
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      // The base image's own layer has no command: its line is the size alone.
      const match = /^(\d+)\t?(.*)$/.exec(line);
      return {
        sizeBytes: Number(match?.[1] ?? 0),
        createdBy: (match?.[2] ?? '')
          .replace(/^\/bin\/sh -c (#\(nop\)\s*)?/, '')
          .replace(/\s+/g, ' ')
          .trim(),
      };
    });
  // The first FROM: the Dockerfile's BASE_IMAGE (debian:bookworm-slim unless overridden).
  const baseName = process.env.BENCH_BASE_IMAGE ?? 'debian:bookworm-slim';
  const baseInspect = await run('docker', ['image', 'inspect', '-f', '{{.Size}}', baseName]);
  const base =
    baseInspect.code === 0
      ? {
          image: baseName,
          sizeBytes: Number(baseInspect.stdout.trim()),
          largest: await du(baseName, '/usr/* /var/* /var/cache/* /var/lib/* /usr/share/* /usr/lib/*', 12),
        }
      : null;
  const rayVenvLargest = await du(
    imageId,
    '/opt/ray/lib/python3*/site-packages/* /opt/ray/lib/python3*/site-packages/ray/*',
    15,
  );
  const node = await du(imageId, '/usr/local/bin/node', 1);
  return { image, imageId, sizeBytes, layers, base, rayVenvLargest, nodeBinaryBytes: node[0]?.bytes ?? null };
}
