import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GVISOR_SECCOMP_PROFILE, SANDBOX_NETWORK_REFUSED_EXIT, SANDBOX_NETWORK_VARIABLE } from '@ray-agent/protocol';
import { describe, expect, test } from 'vitest';
import { tempDir } from './helpers.js';

const WRAPPER = fileURLToPath(new URL('../src/sandbox/runsc', import.meta.url));

/** What Ray 2.58's gVisor backend runs (backend/gvisor.py), with the sandbox's network as the cluster asked. */
function rayRun(network: string[]): string[] {
  return [
    '--rootless',
    '--ignore-cgroups',
    '--root',
    '/tmp/runsc',
    ...network,
    '--overlay2=root:dir=/tmp/ray/sandbox/abc/overlay',
    'run',
    '--bundle',
    '/tmp/ray/sandbox/abc',
    'abc',
  ];
}

/** Runs the wrapper over a stand-in for Debian's runsc that records its arguments and its oom_score_adj. */
function wrapper(args: string[], env: Record<string, string> = {}) {
  const dir = tempDir('runsc-wrapper-');
  const record = join(dir, 'record');
  const real = join(dir, 'real-runsc');
  writeFileSync(real, `#!/bin/sh\nprintf '%s\\n' "$@" > ${record}\ncat /proc/self/oom_score_adj >> ${record}\n`);
  chmodSync(real, 0o755);
  const result = spawnSync(WRAPPER, args, {
    env: { PATH: '/usr/bin:/bin', RAY_AGENT_REAL_RUNSC: real, ...env },
    encoding: 'utf8',
  });
  const lines = existsSync(record) ? readFileSync(record, 'utf8').trim().split('\n') : undefined;
  return {
    code: result.status,
    stderr: result.stderr,
    passed: lines?.slice(0, -1),
    oomScoreAdj: lines === undefined ? undefined : Number(lines.at(-1)),
  };
}

describe('the image runsc wrapper', () => {
  test("rewrites Ray's overlay flag for Debian's runsc and passes everything else on in order", () => {
    const ran = wrapper(rayRun(['--network', 'none']));
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.passed).toEqual(
      rayRun(['--network', 'none']).map((a) =>
        a === '--overlay2=root:dir=/tmp/ray/sandbox/abc/overlay' ? '--overlay2=root:/tmp/ray/sandbox/abc/overlay' : a,
      ),
    );
  });

  test.each([
    [['--network', 'host']],
    [['--network=host']],
    [['--network', 'sandbox']],
    [[]], // runsc's default is its own netstack, which routes out
  ])('refuses a sandbox any network but none (%j) unless the person allowed it', (network) => {
    const refused = wrapper(rayRun(network));
    expect(refused.code).toBe(SANDBOX_NETWORK_REFUSED_EXIT);
    expect(refused.passed).toBeUndefined();
    expect(refused.stderr).toMatch(/no network .*SANDBOX_NETWORK=on/);
    const allowed = wrapper(rayRun(network), { [SANDBOX_NETWORK_VARIABLE]: 'on' });
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.passed).toContain('run');
  });

  test('a new sandbox is the first the kernel kills under memory pressure; other commands are left as they are', () => {
    expect(wrapper(rayRun(['--network=none'])).oomScoreAdj).toBe(1000);
    const exec = wrapper(['--root', '/tmp/runsc', 'exec', 'abc', 'uname', '-r']);
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.passed).toEqual(['--root', '/tmp/runsc', 'exec', 'abc', 'uname', '-r']);
    expect(exec.oomScoreAdj).toBe(Number(readFileSync('/proc/self/oom_score_adj', 'utf8')));
  });
});

interface SeccompRule {
  names: string[];
  action: string;
  args: { index: number; value: number; valueTwo?: number; op: string }[];
  includes: { caps?: string[]; arches?: string[] };
  excludes: { caps?: string[]; arches?: string[] };
}

describe("the gVisor seccomp profile (Docker's default plus what rootless runsc needs)", () => {
  const profile = GVISOR_SECCOMP_PROFILE as { defaultAction: string; syscalls: SeccompRule[] };
  /** Rules that apply to a container with no capabilities on x86_64: the agent's. */
  const forAgent = profile.syscalls.filter(
    (rule) =>
      rule.action === 'SCMP_ACT_ALLOW' &&
      !rule.includes.caps?.length &&
      !(rule.includes.arches?.length && !rule.includes.arches.includes('amd64')),
  );
  const allowed = (name: string) => forAgent.filter((rule) => rule.names.includes(name));

  test('denies what it does not name', () => {
    expect(profile.defaultAction).toBe('SCMP_ACT_ERRNO');
  });

  test('allows mount, umount2, pivot_root and chroot, and nothing else that builds namespaces or loads code', () => {
    for (const name of ['mount', 'umount2', 'pivot_root', 'chroot']) expect(allowed(name), name).toHaveLength(1);
    for (const name of ['unshare', 'setns', 'bpf', 'keyctl', 'add_key', 'init_module', 'kexec_load', 'ptrace_attach'])
      expect(allowed(name), name).toEqual([]);
  });

  test('lets clone create every namespace but a cgroup namespace', () => {
    const CLONE_NEWCGROUP = 0x02000000;
    const CLONE_NAMESPACES = 0x7e020000; // Docker's own rule: no namespace flag at all
    expect(allowed('clone').map((rule) => rule.args)).toEqual([
      [{ index: 0, value: CLONE_NAMESPACES, op: 'SCMP_CMP_MASKED_EQ' }],
      [{ index: 0, value: CLONE_NEWCGROUP, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    ]);
    expect(allowed('clone3')).toEqual([]); // glibc falls back to clone, whose flags seccomp can see
  });
});
