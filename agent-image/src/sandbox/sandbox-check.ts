import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  GVISOR_KERNEL_RELEASE,
  RAY_SANDBOX_IGNORE_CGROUPS,
  SANDBOX_SECCOMP_FILE,
  SANDBOX_TEST_IMAGE,
} from '@ray-agent/protocol';
import { z } from 'zod';

export type SandboxCheck =
  | { kind: 'ready'; kernel: string; startSeconds: number }
  | { kind: 'unavailable'; reason: string };

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'sandbox_check.py');
/** Debian's runsc, which the image's wrapper (/usr/local/bin/runsc) execs. */
export const REAL_RUNSC = process.env.RAY_AGENT_REAL_RUNSC ?? '/usr/bin/runsc';
/** A first sandbox extracts the image and boots gVisor: seconds, more on a loaded machine. */
const CHECK_TIMEOUT_SECONDS = 60;

const CheckOutput = z.union([
  z.object({ ok: z.literal(true), kernel: z.string(), hostKernel: z.string(), startSeconds: z.number() }),
  z.object({ ok: z.literal(false), error: z.string() }),
]);

const RUN_HINT = `run the container with --security-opt seccomp=seccomp-gvisor.json --security-opt systempaths=unconfined (the profile is in the image at ${SANDBOX_SECCOMP_FILE}), or let the tray app start it`;

interface Mount {
  point: string;
  options: string[];
}

/** /proc/self/mountinfo's mount points and per-mount options (fields 5 and 6; octal escapes as the kernel writes). */
export function parseMountinfo(text: string): Mount[] {
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => {
      const fields = line.split(' ');
      const point = (fields[4] ?? '').replace(/\\(\d{3})/g, (_, octal: string) =>
        String.fromCharCode(Number.parseInt(octal, 8)),
      );
      return { point, options: (fields[5] ?? '').split(',') };
    });
}

/**
 * What rules gVisor out before a sandbox is tried (milliseconds, no Python): runsc absent, Docker's /proc masks in
 * place (the gofer's fresh procfs is refused while any mount hides part of /proc), or /tmp mounted nosuid/nodev (runsc
 * remounts the bundle's root there without those flags, which a user namespace may not drop).
 */
export function missingPrerequisite(mountinfo: string, runscPath: string = REAL_RUNSC): string | undefined {
  try {
    accessSync(runscPath, constants.X_OK);
  } catch {
    return `gVisor's runsc is not installed at ${runscPath}; use the Ray Agent image, which carries it`;
  }
  const mounts = parseMountinfo(mountinfo);
  const masks = mounts.filter((mount) => mount.point.startsWith('/proc/')).map((mount) => mount.point);
  if (masks.length > 0)
    return `Docker's /proc masks are in place (${masks.slice(0, 3).join(', ')}${masks.length > 3 ? ', ...' : ''}), which gVisor's rootless start cannot work under: ${RUN_HINT}`;
  const tmp = mounts
    .filter((mount) => mount.point === '/' || mount.point === '/tmp' || '/tmp'.startsWith(`${mount.point}/`))
    .sort((a, b) => b.point.length - a.point.length)[0];
  const locked = tmp?.options.filter((option) => option === 'nosuid' || option === 'nodev') ?? [];
  if (locked.length > 0)
    return `/tmp is mounted ${locked.join(',')}, which gVisor cannot remount its sandboxes' root under: mount it with --tmpfs /tmp:rw,exec,suid,dev,size=... (the tray app does)`;
  return undefined;
}

/** runsc's own words for the usual causes, turned into what to change. */
export function explainFailure(error: string): string {
  const detail = error.replace(/\s+/g, ' ').trim().slice(-300);
  if (/re-executing self|fork\/exec \/proc\/self\/exe: operation not permitted/.test(error))
    return `the container's seccomp profile does not let gVisor create its user namespaces: ${RUN_HINT} (${detail})`;
  if (/not found in PATH/.test(error)) return `Ray found no runsc in PATH (${detail})`;
  return `a test sandbox did not start: ${detail}`;
}

/**
 * The self-test: one sandbox started the way Ray's sandbox API starts it, from the image's busybox rootfs, must
 * answer `uname -r` with gVisor's kernel. Only then does the node advertise the `gvisor` resource. Never throws.
 */
export async function checkSandbox(
  python: string,
  options: { mountinfo?: string; image?: string; runscPath?: string; timeoutSeconds?: number } = {},
): Promise<SandboxCheck> {
  let mountinfo = options.mountinfo;
  try {
    mountinfo ??= readFileSync('/proc/self/mountinfo', 'utf8');
  } catch (error) {
    return { kind: 'unavailable', reason: `cannot read /proc/self/mountinfo: ${(error as Error).message}` };
  }
  const missing = missingPrerequisite(mountinfo, options.runscPath);
  if (missing) return { kind: 'unavailable', reason: missing };
  const timeoutSeconds = options.timeoutSeconds ?? CHECK_TIMEOUT_SECONDS;
  const env = { ...process.env, [RAY_SANDBOX_IGNORE_CGROUPS]: '1', RAY_USAGE_STATS_ENABLED: '0' };
  const output = await new Promise<string>((resolve) => {
    execFile(
      python,
      [SCRIPT, options.image ?? SANDBOX_TEST_IMAGE, String(timeoutSeconds)],
      { timeout: (timeoutSeconds + 30) * 1000, env, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        const last = stdout.trim().split('\n').pop() ?? '';
        resolve(last || JSON.stringify({ ok: false, error: stderr.trim() || error?.message || 'no output' }));
      },
    );
  });
  let result: z.infer<typeof CheckOutput>;
  try {
    result = CheckOutput.parse(JSON.parse(output));
  } catch {
    return { kind: 'unavailable', reason: explainFailure(output) };
  }
  if (!result.ok) return { kind: 'unavailable', reason: explainFailure(result.error) };
  if (result.kernel !== GVISOR_KERNEL_RELEASE || result.kernel === result.hostKernel)
    return {
      kind: 'unavailable',
      reason: `a test sandbox reported kernel ${result.kernel} (the host's is ${result.hostKernel}), not gVisor's ${GVISOR_KERNEL_RELEASE}`,
    };
  return { kind: 'ready', kernel: result.kernel, startSeconds: result.startSeconds };
}
