/** Docker-style quantities: CPUs like `2` or `1.5`, memory like `4g`, `512m`, `1073741824`. */

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  ki: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Returns bytes, or an error sentence. Binary units, as `docker run --memory` reads them. */
export function parseMemory(text: string): number | string {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!match) return 'is not a size';
  const unit = UNITS[(match[2] ?? '').toLowerCase()];
  if (unit === undefined) return `has an unknown unit "${match[2]}"`;
  const bytes = Math.floor(Number(match[1]) * unit);
  if (!Number.isFinite(bytes) || bytes <= 0) return 'must be more than zero';
  return bytes;
}

export function parseCpus(text: string): number | string {
  if (!/^\s*\d+(?:\.\d+)?\s*$/.test(text)) return 'is not a number of CPUs';
  const cpus = Number(text);
  if (!(cpus > 0)) return 'must be more than zero';
  if (cpus > 4096) return 'is larger than any machine';
  return cpus;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index += 1;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[index]}`;
}
