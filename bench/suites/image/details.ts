import type { ImageData } from './schema.js';

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
const cell = (text: string) => text.replace(/\|/g, '\\|');
const LARGEST = 30;

/** The paths worth a row: not `/`, and not a folder that is (almost) all one entry below it (`/opt` → `/opt/ray`). */
function shown(paths: ImageData['paths']): ImageData['paths'] {
  return paths.filter(
    (entry) =>
      entry.path !== '/' &&
      !paths.some((other) => other.path.startsWith(`${entry.path}/`) && other.bytes >= 0.99 * entry.bytes),
  );
}

/** The layer table and the largest paths, from the data alone. */
export function details(data: ImageData): string {
  const lines = [
    `Image \`${data.image}\` (\`${data.imageId.slice(0, 19)}\`), layers bottom to top:`,
    '',
    '| Layer (Dockerfile step) | tar, MB | gzip, MB |',
    '|---|---:|---:|',
  ];
  for (const layer of data.layers) {
    const step = layer.createdBy.length > 110 ? `${layer.createdBy.slice(0, 107)}...` : layer.createdBy;
    lines.push(`| \`${cell(step || '(the base image)')}\` | ${mb(layer.tarBytes)} | ${mb(layer.gzipBytes)} |`);
  }
  const tar = data.layers.reduce((sum, layer) => sum + layer.tarBytes, 0);
  const gzip = data.layers.reduce((sum, layer) => sum + layer.gzipBytes, 0);
  lines.push(`| **all ${data.layers.length} layers** | **${mb(tar)}** | **${mb(gzip)}** |`, '');
  lines.push(
    `The ${LARGEST} largest files and folders (a folder counts all it holds, each inode once; nested paths keep their size; a folder that is almost all one entry below it shows as that entry):`,
    '',
    '| Path | MB |',
    '|---|---:|',
  );
  for (const entry of shown(data.paths).slice(0, LARGEST)) {
    lines.push(`| \`${cell(entry.path)}\` | ${mb(entry.bytes)} |`);
  }
  return `${lines.join('\n')}\n`;
}
