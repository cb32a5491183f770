import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rayProcessesLeft, rayStopForce } from '../src/supervisor/ray-node.js';
import { tempDir } from './helpers.js';

/** Command lines as Ray 2.58 leaves them in a container's /proc (seen with `ray start --block`). */
const RAY = {
  start: '/opt/ray/bin/python3\0/opt/ray/bin/ray\0start\0--address=head:6379\0--block\0',
  raylet: '/opt/ray/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet\0--raylet_socket_name=/tmp/x\0',
  gcs: '/opt/ray/lib/python3.11/site-packages/ray/core/src/ray/gcs/gcs_server\0--log_dir=/tmp/x\0',
  logMonitor: '/opt/ray/bin/python3\0-u\0/opt/ray/lib/python3.11/site-packages/ray/_private/log_monitor.py\0',
  idleWorker: `ray::IDLE${'\0'.repeat(40)}`,
  agent: `ray::DashboardAgent${'\0'.repeat(40)}`,
};
/** What stays in the agent's container once Ray is gone. */
const NOT_RAY = {
  init: '/sbin/docker-init\0--\0/usr/bin/tini\0--\0node\0/opt/ray-agent/agent.mjs\0',
  tini: '/usr/bin/tini\0--\0node\0/opt/ray-agent/agent.mjs\0',
  node: 'node\0/opt/ray-agent/agent.mjs\0',
  preflight: 'python3\0/opt/ray-agent/cluster_info.py\0head:6379\x05\0',
  shell: 'sh\0-c\0cat /proc/1/status\0',
  zombie: '',
};

function procTree(cmdlines: string[]): string {
  const root = tempDir('agent-proc-');
  cmdlines.forEach((cmdline, index) => {
    mkdirSync(join(root, String(100 + index)));
    writeFileSync(join(root, String(100 + index), 'cmdline'), cmdline);
  });
  mkdirSync(join(root, 'self'));
  return root;
}

describe('rayProcessesLeft', () => {
  it('is false when only the agent, its init, a preflight, a shell and zombies are left', () => {
    expect(rayProcessesLeft(procTree(Object.values(NOT_RAY)))).toBe(false);
  });

  it.each(Object.entries(RAY))('is true while a Ray process (%s) is left', (_name, cmdline) => {
    expect(rayProcessesLeft(procTree([...Object.values(NOT_RAY), cmdline]))).toBe(true);
  });
});

describe('rayStopForce', () => {
  // A stand-in `ray` executable that records its arguments: a real process, so the skip is observable.
  function fakeRay(): { bin: string; called: string } {
    const dir = tempDir('agent-fake-ray-');
    const called = join(dir, 'called');
    const bin = join(dir, 'ray');
    writeFileSync(bin, `#!/bin/sh\necho "$@" > '${called}'\n`);
    chmodSync(bin, 0o755);
    return { bin, called };
  }

  it('does not start `ray stop` when no Ray process is left (a clean drain)', async () => {
    const ray = fakeRay();
    await rayStopForce(ray.bin, procTree(Object.values(NOT_RAY)));
    expect(existsSync(ray.called)).toBe(false);
  });

  it('runs `ray stop --force` when a Ray process is left', async () => {
    const ray = fakeRay();
    await rayStopForce(ray.bin, procTree([NOT_RAY.node, RAY.raylet]));
    expect(existsSync(ray.called)).toBe(true);
  });
});
