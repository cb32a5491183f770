import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs the docker CLI against the machine's engine; rejects with its stderr on failure. */
export async function docker(args: string[], options: { host?: string } = {}): Promise<string> {
  const hostArgs = options.host === undefined ? [] : ['-H', options.host];
  try {
    const { stdout } = await run('docker', [...hostArgs, ...args], { maxBuffer: 64 * 1024 * 1024 });
    return stdout.trim();
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`docker ${args.join(' ')} failed: ${stderr.trim() || String(error)}`);
  }
}

/** docker CLI, ignoring failure (cleanup of things that may already be gone). */
export async function dockerQuiet(args: string[]): Promise<void> {
  await docker(args).catch(() => undefined);
}

export async function inspectJson<T = Record<string, unknown>>(kind: 'container' | 'image' | 'volume', name: string) {
  return JSON.parse(await docker([kind, 'inspect', name])) as T[];
}

/** A name prefix unique to this run, so tests touch only what they made (other suites share the engine). */
export function runPrefix(what: string): string {
  return `rap-t-${what}-${randomBytes(3).toString('hex')}`;
}

/** Removes every container and volume whose name starts with prefix. */
export async function removeByPrefix(prefix: string): Promise<void> {
  const containers = (await docker(['ps', '-aq', '--filter', `name=^/${prefix}`])).split('\n').filter(Boolean);
  if (containers.length > 0) await dockerQuiet(['rm', '-f', '-v', ...containers]);
  const volumes = (await docker(['volume', 'ls', '-q', '--filter', `name=^${prefix}`]))
    .split('\n')
    .filter((name) => name.startsWith(prefix));
  if (volumes.length > 0) await dockerQuiet(['volume', 'rm', '-f', ...volumes]);
}
