import { StatusView } from '@ray-agent/protocol';
import { describe, expect, test } from 'vitest';
import { cpuLimitText, describeView } from '../src/cli/cli.js';

const MiB = 1024 ** 2;

function view(limits: StatusView['limits']): StatusView {
  return StatusView.parse({
    phase: 'contributing',
    headline: 'Contributing: 0 tasks running',
    detail: null,
    contributing: true,
    registration: { state: 'registered', providerId: 'prv-abc' },
    heartbeat: { healthy: true, lastSuccessAt: null, failingSince: null, consecutiveFailures: 0 },
    runningTasks: 0,
    limits,
    agentVersion: '0.1.0',
    updatedAt: '2026-01-01T00:00:00.000Z',
  });
}

describe('ray-agent status', () => {
  test('says the CPUs Ray uses when a fractional limit gives it fewer', () => {
    expect(describeView(view({ cpus: 2.5, memoryBytes: 4096 * MiB, rayCpus: 2 }))).toContain(
      'limits: Ray uses 2 of 2.5 CPUs, 4096 MiB',
    );
    expect(describeView(view({ cpus: 2, memoryBytes: 4096 * MiB, rayCpus: 2 }))).toContain('limits: 2 CPUs, 4096 MiB');
    expect(cpuLimitText({ cpus: 1 })).toBe('1 CPU');
    const sandboxed = StatusView.parse({
      ...view(null),
      sandbox: { state: 'ready', line: 'ready: 1 slot, 0 running' },
    });
    expect(describeView(sandboxed)).toContain('  sandboxes: ready: 1 slot, 0 running');
    expect(describeView(view(null))).not.toContain('sandboxes');
    expect(cpuLimitText({ cpus: 0.5, rayCpus: 1 })).toBe('0.5 CPUs');
  });

  test('prints the tunnel line, and none in direct mode', () => {
    const line = 'Tunnel: up, handshake 12 s ago, 1.2 MB in / 0.8 MB out, 100.96.0.7 via gateway gw.lan:51820';
    const withTunnel = { ...view(null), tunnel: { state: 'up' as const, line, problem: null } };
    expect(describeView(withTunnel).split('\n')).toContain(
      '  tunnel: up, handshake 12 s ago, 1.2 MB in / 0.8 MB out, 100.96.0.7 via gateway gw.lan:51820',
    );
    expect(describeView({ ...view(null), tunnel: null })).not.toContain('tunnel');
  });
});
