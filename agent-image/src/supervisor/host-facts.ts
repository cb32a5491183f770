import { execFile } from 'node:child_process';
import os from 'node:os';

/** The address other nodes should reach this one at: the configured one, else the first non-internal IPv4. */
export function primaryAddress(configured: string | undefined): string {
  if (configured) return configured;
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  return '127.0.0.1';
}

/**
 * Ray and Python versions of this image, from the installed distribution's metadata: importing Ray to ask it
 * took 0.6-2 s of CPU at every start, the metadata about 0.1 s.
 */
export function localVersions(python: string): Promise<{ ray: string; python: string }> {
  return new Promise((resolve) => {
    execFile(
      python,
      ['-c', 'import importlib.metadata as m, platform; print(m.version("ray"), platform.python_version())'],
      { timeout: 60_000 },
      (error, stdout) => {
        const [ray, py] = error ? [] : stdout.trim().split(/\s+/);
        resolve({ ray: ray ?? 'unknown', python: py ?? 'unknown' });
      },
    );
  });
}
