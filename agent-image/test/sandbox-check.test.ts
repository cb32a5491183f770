import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RAY_SANDBOX_IGNORE_CGROUPS, SANDBOX_LABEL, SANDBOX_RESOURCE } from '@ray-agent/protocol';
import { describe, expect, test } from 'vitest';
import { checkSandbox, explainFailure, missingPrerequisite, parseMountinfo } from '../src/sandbox/sandbox-check.js';
import { rayEnvironment, rayStartArgs } from '../src/supervisor/ray-node.js';
import { rayNodeOptions, tempDir } from './helpers.js';

/** Read in the agent image under the hardening of a plain `docker run` (Docker's masks, /tmp nosuid,nodev) ... */
const dockerDefault = readFileSync(new URL('fixtures/mountinfo-docker-default.txt', import.meta.url), 'utf8');
/** ... and under the sandbox contract's (`systempaths=unconfined`, /tmp suid,dev). */
const sandboxReady = readFileSync(new URL('fixtures/mountinfo-sandbox-ready.txt', import.meta.url), 'utf8');
/** Any executable stands for runsc where only its presence is looked at. */
const present = process.execPath;

/** A stand-in for Python that prints what sandbox_check.py would, so the reading of each answer is tested. */
function fakePython(output: string, exitCode = 0): string {
  const path = join(tempDir('sandbox-check-'), 'python');
  writeFileSync(path, `#!/bin/sh\nprintf '%s\\n' '${output}'\nexit ${exitCode}\n`);
  chmodSync(path, 0o755);
  return path;
}

describe('what rules sandboxes out before one is tried', () => {
  test('the sandbox contract passes', () => {
    expect(missingPrerequisite(sandboxReady, present)).toBeUndefined();
  });

  test("Docker's /proc masks are named, with the flags that lift them", () => {
    const reason = missingPrerequisite(dockerDefault, present);
    expect(reason).toMatch(/\/proc masks are in place \(\/proc\/bus, \/proc\/fs, \/proc\/irq, \.\.\.\)/);
    expect(reason).toContain('--security-opt systempaths=unconfined');
    expect(reason).toContain('seccomp=seccomp-gvisor.json');
  });

  test('a /tmp mounted nosuid,nodev is named, with the tmpfs flags to use', () => {
    const locked = sandboxReady.replace(/ \/tmp rw,relatime /, ' /tmp rw,nosuid,nodev,relatime ');
    expect(locked).not.toBe(sandboxReady);
    expect(missingPrerequisite(locked, present)).toMatch(
      /\/tmp is mounted nosuid,nodev.*--tmpfs \/tmp:rw,exec,suid,dev/,
    );
  });

  test('without a /tmp mount the root file system decides', () => {
    const noTmp = sandboxReady
      .split('\n')
      .filter((line) => !line.includes(' /tmp '))
      .join('\n')
      .replace(/ \/ ro,relatime /, ' / ro,nosuid,relatime ');
    expect(missingPrerequisite(noTmp, present)).toMatch(/\/tmp is mounted nosuid,/);
  });

  test('a missing runsc is named before anything else', () => {
    expect(missingPrerequisite(sandboxReady, '/nonexistent/runsc')).toMatch(/runsc is not installed at \/nonexistent/);
  });

  test('mount points with escaped characters are read as the kernel means them', () => {
    const [mount] = parseMountinfo('36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw\n');
    expect(mount).toEqual({ point: '/mnt/a b', options: ['rw', 'noatime'] });
  });
});

describe('the self-test', () => {
  test('passes on a sandbox that reports gVisor kernel', async () => {
    const python = fakePython('{"ok": true, "kernel": "4.4.0", "hostKernel": "6.1.0", "startSeconds": 0.9}');
    expect(await checkSandbox(python, { mountinfo: sandboxReady, runscPath: present })).toEqual({
      kind: 'ready',
      kernel: '4.4.0',
      startSeconds: 0.9,
    });
  });

  test("fails on a sandbox that reports the host's kernel: the code did not run under gVisor", async () => {
    const python = fakePython('{"ok": true, "kernel": "6.1.0", "hostKernel": "6.1.0", "startSeconds": 0.9}');
    const check = await checkSandbox(python, { mountinfo: sandboxReady, runscPath: present });
    expect(check).toEqual({
      kind: 'unavailable',
      reason: expect.stringMatching(/kernel 6\.1\.0.*not gVisor's 4\.4\.0/),
    });
  });

  test("turns runsc's seccomp refusal into what to change", async () => {
    const python = fakePython(
      '{"ok": false, "error": "SandboxCreationError: gVisor container failed to start: Error executing inside namespace: re-executing self: fork/exec /proc/self/exe: operation not permitted"}',
    );
    const check = await checkSandbox(python, { mountinfo: sandboxReady, runscPath: present });
    expect(check.kind).toBe('unavailable');
    expect(check.kind === 'unavailable' && check.reason).toMatch(
      /seccomp profile does not let gVisor create its user namespaces: run the container with --security-opt seccomp=/,
    );
  });

  test('a Python that dies without a word is reported by its error output, not as a crash', async () => {
    const path = join(tempDir('sandbox-check-'), 'python');
    writeFileSync(path, "#!/bin/sh\necho 'ModuleNotFoundError: No module named ray' >&2\nexit 1\n");
    chmodSync(path, 0o755);
    const check = await checkSandbox(path, { mountinfo: sandboxReady, runscPath: present });
    expect(check).toEqual({ kind: 'unavailable', reason: expect.stringContaining('No module named ray') });
  });

  test('does not start Python when a prerequisite is missing', async () => {
    const python = join(tempDir('sandbox-check-'), 'never-run');
    const check = await checkSandbox(python, { mountinfo: dockerDefault, runscPath: present });
    expect(check).toEqual({ kind: 'unavailable', reason: expect.stringMatching(/\/proc masks/) });
  });

  test('explains an unknown failure by its last words', () => {
    expect(explainFailure(`${'x'.repeat(400)} the end`)).toMatch(/^a test sandbox did not start: x+ the end$/);
  });
});

describe('what the node tells Ray about sandboxes', () => {
  const flag = (args: string[], name: string) =>
    args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);

  test('a node whose self-test passed advertises the gvisor resource and the sandbox label beside its own', () => {
    const args = rayStartArgs(rayNodeOptions({ providerId: 'p-1', sandboxSlots: 3 }));
    expect(JSON.parse(flag(args, 'resources') ?? '')).toEqual({ 'provider:p-1': 1, [SANDBOX_RESOURCE]: 3 });
    expect(flag(args, 'labels')).toBe(`ray-agent/provider-id=p-1,${SANDBOX_LABEL}=gvisor`);
  });

  test('a node without sandboxes advertises neither', () => {
    for (const sandboxSlots of [0, undefined]) {
      const args = rayStartArgs(rayNodeOptions({ providerId: 'p-1', sandboxSlots }));
      expect(JSON.parse(flag(args, 'resources') ?? '')).toEqual({ 'provider:p-1': 1 });
      expect(flag(args, 'labels')).toBe('ray-agent/provider-id=p-1');
    }
  });

  test("Ray's runsc runs without touching the container's read-only cgroups", () => {
    expect(rayEnvironment(rayNodeOptions({}), {})[RAY_SANDBOX_IGNORE_CGROUPS]).toBe('1');
  });
});
