import { ExitCode, StatusDocument, StatusView, type TunnelReport } from '@ray-agent/protocol';
import { describe, expect, test } from 'vitest';
import {
  type AgentFacts,
  type ContainerFacts,
  deriveView,
  EXIT_REASONS,
  formatBytes,
  secondsAgo,
  type ViewInputs,
} from '../src/app/view-model.js';

const NOW = new Date('2026-11-27T12:00:00.000Z');

function agentStatus(overrides: Partial<StatusDocument> = {}): StatusDocument {
  return StatusDocument.parse({
    schemaVersion: 1,
    state: 'contributing',
    stateSince: NOW.toISOString(),
    agent: { version: '0.1.0', startedAt: NOW.toISOString(), uptimeSeconds: 10 },
    ray: {
      state: 'joined',
      gcsAddress: 'head:6379',
      nodeIp: '172.18.0.3',
      version: '2.58.0',
      pythonVersion: '3.11.2',
      clusterVersion: '2.58.0',
      clusterPythonVersion: '3.11.2',
      joinedAt: NOW.toISOString(),
      restarts: 0,
      recentErrors: [],
    },
    registration: {
      state: 'registered',
      providerId: 'prv-abc123',
      managerUrl: 'https://m',
      registeredAt: NOW.toISOString(),
    },
    heartbeat: {
      state: 'healthy',
      intervalSeconds: 10,
      lastSuccessAt: NOW.toISOString(),
      lastAttemptAt: NOW.toISOString(),
      consecutiveFailures: 0,
      failingSince: null,
      nextAttemptAt: null,
      serverClockSkewSeconds: 0,
    },
    tasks: { running: 3 },
    limits: { cpus: 2, memoryBytes: 4 * 1024 ** 3, objectStoreBytes: 1024 ** 3, shmBytes: 1024 ** 3, source: 'cgroup' },
    usage: { cpuPercent: 50, memoryBytes: 1024 ** 3 },
    warnings: [],
    lastError: null,
    ...overrides,
  });
}

const running: ContainerFacts = {
  running: true,
  restarting: false,
  restartCount: 0,
  exitCode: null,
  startedAt: '2026-11-27T11:00:00.000Z',
  oomKilled: false,
  memoryBytes: 4 * 1024 ** 3,
};
const ok = (status = agentStatus()): AgentFacts => ({ kind: 'ok', status });

function view(overrides: Partial<ViewInputs>): StatusView {
  const result = deriveView({
    contribute: true,
    engine: { kind: 'ready' },
    container: running,
    agent: ok(),
    pull: undefined,
    stopping: false,
    now: NOW,
    ...overrides,
  });
  return StatusView.parse(result);
}

describe('deriveView', () => {
  test('a contributing agent shows its tasks, registration and healthy heartbeat', () => {
    const v = view({});
    expect(v).toMatchObject({
      phase: 'contributing',
      contributing: true,
      runningTasks: 3,
      headline: 'Contributing: 3 tasks running',
    });
    expect(v.registration).toEqual({ state: 'registered', providerId: 'prv-abc123' });
    expect(v.heartbeat.healthy).toBe(true);
    expect(v.limits).toEqual({ cpus: 2, memoryBytes: 4 * 1024 ** 3, rayCpus: 2 });
  });

  test('a fractional CPU limit shows the whole CPUs Ray uses, as the agent reports them', () => {
    const limits = { ...agentStatus().limits, cpus: 2.5, rayCpus: 2 };
    expect(view({ agent: ok(agentStatus({ limits })) }).limits).toEqual({
      cpus: 2.5,
      memoryBytes: 4 * 1024 ** 3,
      rayCpus: 2,
    });
    // An agent from before the field: the same rule (whole CPUs, at least 1), from the contract.
    const { rayCpus: _none, ...older } = limits;
    expect(view({ agent: ok(agentStatus({ limits: older })) }).limits?.rayCpus).toBe(2);
  });

  test.each([
    ['not-installed', 'docker-missing'],
    ['not-running', 'docker-stopped'],
    ['permission-denied', 'docker-denied'],
  ] as const)('engine %s gives %s with its fix, whatever the container said before', (kind, phase) => {
    const v = view({ engine: { kind, message: `Docker ${kind}`, fix: 'do this' } });
    expect(v.phase).toBe(phase);
    expect(v.headline).toBe(`Docker ${kind}`);
    expect(v.detail).toBe('do this');
    expect(v.contributing).toBe(true); // the last known agent facts are kept, but the phase says what to fix
  });

  test('pulling shows the percentage', () => {
    const v = view({
      container: undefined,
      agent: undefined,
      pull: { image: 'ray-agent:dev', currentBytes: 50, totalBytes: 200, fraction: 0.25, done: false, error: null },
    });
    expect(v).toMatchObject({ phase: 'pulling', headline: 'Downloading the agent (25%)' });
  });

  test('a failed pull without a running container is an error that says why', () => {
    const v = view({
      container: undefined,
      agent: undefined,
      pull: { image: 'x', currentBytes: 0, totalBytes: 0, fraction: null, done: true, error: 'not found' },
    });
    expect(v).toMatchObject({ phase: 'error', detail: 'not found' });
  });

  test('no container: off when not contributing, starting when it is', () => {
    expect(view({ contribute: false, container: undefined, agent: undefined }).phase).toBe('off');
    expect(view({ contribute: true, container: undefined, agent: undefined }).phase).toBe('starting');
  });

  test('a container that exited with the token-rejected code says to paste a new token', () => {
    const v = view({ container: { ...running, running: false, exitCode: 3 }, agent: undefined });
    expect(v.phase).toBe('error');
    expect(v.detail).toMatch(/enrollment token/);
  });

  test.each([
    [ExitCode.tmpUnwritable, /\/tmp/],
    [ExitCode.registrationFailed, /refused the registration.*certificate/],
    [ExitCode.stateDirUnusable, /state volume/],
    [ExitCode.badConfig, /configuration/],
    [ExitCode.forced, /same provider/],
    [ExitCode.tunnelNamespaceGone, /tunnel container restarted/],
  ])('a container that exited %i says why and what to do', (exitCode, words) => {
    const v = view({ container: { ...running, running: false, exitCode }, agent: undefined });
    expect(v.phase).toBe('error');
    expect(v.headline).toBe(`The agent stopped (exit code ${exitCode})`);
    expect(v.detail).toMatch(words);
    expect(v.detail).toBe(EXIT_REASONS[exitCode]);
  });

  test('every exit code of the contract but 0 has its explanation', () => {
    for (const code of Object.values(ExitCode)) {
      if (code === ExitCode.ok) continue;
      expect(EXIT_REASONS[code], `exit code ${code}`).toMatch(/\w+/);
    }
  });

  test('an OOM-killed agent shows as such, with its limit and what to change', () => {
    const v = view({
      container: { ...running, running: false, exitCode: 137, oomKilled: true, memoryBytes: 4 * 1024 ** 3 },
      agent: undefined,
    });
    expect(v.phase).toBe('error');
    expect(v.headline).toBe('The agent ran out of memory');
    expect(v.detail).toBe(
      'The agent ran out of memory (limit 4 GiB): give it more memory in Settings, or run fewer tasks at once.',
    );
  });

  test('an agent OOM-killed again and again is crash-looping for that reason', () => {
    const v = view({
      container: {
        ...running,
        restarting: true,
        restartCount: 4,
        exitCode: 137,
        oomKilled: true,
        memoryBytes: 1536 * 1024 ** 2,
      },
      agent: undefined,
    });
    expect(v.phase).toBe('crash-looping');
    expect(v.detail).toBe(
      'The agent ran out of memory (limit 1.5 GiB): give it more memory in Settings, or run fewer tasks at once.',
    );
  });

  test('a running container in which something was OOM-killed keeps its phase and says so', () => {
    const v = view({ container: { ...running, oomKilled: true, restartCount: 1 } });
    expect(v.phase).toBe('contributing');
    expect(v.detail).toBe(
      'Part of the agent ran out of memory (limit 4 GiB): give it more memory in Settings, or run fewer tasks at once.',
    );
    // Starting again after the restart policy brought it back: the reason is shown too.
    const fresh = {
      ...running,
      oomKilled: true,
      restartCount: 1,
      startedAt: new Date(NOW.getTime() - 5_000).toISOString(),
    };
    expect(view({ container: fresh, agent: undefined }).detail).toMatch(/ran out of memory/);
    // Stopped on purpose (not contributing): nothing to fix.
    expect(
      view({ contribute: false, container: { ...running, running: false, oomKilled: true }, agent: undefined }).phase,
    ).toBe('off');
  });

  test('a restarting container is crash-looping, not "starting"', () => {
    const v = view({ container: { ...running, restarting: true, exitCode: 2, restartCount: 5 }, agent: undefined });
    expect(v.phase).toBe('crash-looping');
    expect(v.detail).toMatch(/configuration/);
  });

  test('an endpoint that does not answer: starting shortly after start, unreachable later', () => {
    const fresh = { ...running, startedAt: new Date(NOW.getTime() - 5_000).toISOString() };
    expect(view({ container: fresh, agent: { kind: 'unreachable', error: 'ECONNREFUSED' } }).phase).toBe('starting');
    const old = view({ agent: { kind: 'unreachable', error: 'ECONNREFUSED' } });
    expect(old.phase).toBe('unreachable');
    expect(old.detail).toContain('ECONNREFUSED');
    expect(old.contributing).toBe(false);
  });

  test('an agent speaking another schema is outdated', () => {
    expect(view({ agent: { kind: 'outdated', schemaVersion: 2 } }).phase).toBe('outdated');
  });

  test.each([
    ['connecting', 'starting'],
    ['reconnecting', 'reconnecting'],
    ['draining', 'draining'],
    ['stopped', 'stopping'],
    ['error', 'error'],
  ] as const)('agent state %s maps to %s', (state, phase) => {
    const v = view({
      agent: ok(agentStatus({ state, lastError: { code: 'x', message: 'why it is so', at: NOW.toISOString() } })),
    });
    expect(v.phase).toBe(phase);
    expect(v.contributing).toBe(false);
  });

  test('an agent in error carries its sentence', () => {
    const v = view({
      agent: ok(
        agentStatus({
          state: 'error',
          lastError: { code: 'version_mismatch', message: 'the cluster runs Ray 2.57.0', at: NOW.toISOString() },
        }),
      ),
    });
    expect(v.detail).toBe('the cluster runs Ray 2.57.0');
  });

  test('failing heartbeats while contributing show since when, with the reason', () => {
    const status = agentStatus({
      heartbeat: {
        ...agentStatus().heartbeat,
        state: 'failing',
        consecutiveFailures: 4,
        failingSince: '2026-11-27T11:55:00.000Z',
      },
      lastError: { code: 'heartbeat_failing', message: 'the manager refused the connection', at: NOW.toISOString() },
    });
    const v = view({ agent: ok(status) });
    expect(v.phase).toBe('contributing');
    expect(v.heartbeat).toMatchObject({
      healthy: false,
      failingSince: '2026-11-27T11:55:00.000Z',
      consecutiveFailures: 4,
    });
    expect(v.detail).toBe('the manager refused the connection');
  });

  test('stopping wins over what the agent last said', () => {
    expect(view({ stopping: true }).phase).toBe('stopping');
  });
});

describe('the tunnel line', () => {
  const pair = { name: 'ray-agent-tunnel', container: { running: true, restarting: false, exitCode: null } };
  const report = (overrides: Partial<TunnelReport> = {}): TunnelReport => ({
    state: 'up',
    address: '100.96.0.7',
    gatewayEndpoint: 'gw.lan:51820',
    lastHandshakeAt: new Date(NOW.getTime() - 12_000).toISOString(),
    rxBytes: 1_234_567,
    txBytes: 812_345,
    problem: null,
    ...overrides,
  });
  const withTunnel = (tunnel: TunnelReport | undefined, facts: ViewInputs['tunnel'] = pair) =>
    view({ agent: ok(agentStatus(tunnel ? { tunnel } : {})), tunnel: facts });

  test('up: handshake age, bytes in and out, the overlay address and the gateway', () => {
    const shown = withTunnel(report());
    expect(shown.tunnel).toEqual({
      state: 'up',
      line: 'Tunnel: up, handshake 12 s ago, 1.2 MB in / 0.8 MB out, 100.96.0.7 via gateway gw.lan:51820',
      problem: null,
    });
    expect(shown.detail).toBeNull();
  });

  test('direct mode has no tunnel line; a cluster without a gateway says the agent joined directly', () => {
    expect(view({}).tunnel).toBeNull();
    expect(
      withTunnel(report({ state: 'off', address: null, gatewayEndpoint: null, lastHandshakeAt: null })).tunnel,
    ).toMatchObject({ state: 'off', line: 'Tunnel: off, the cluster offers no gateway (joined directly)' });
  });

  test('before the agent reports it, and while it connects', () => {
    expect(withTunnel(undefined).tunnel).toMatchObject({ state: 'starting', line: 'Tunnel: starting' });
    expect(withTunnel(report({ state: 'connecting', lastHandshakeAt: null })).tunnel).toMatchObject({
      line: 'Tunnel: connecting to gateway gw.lan:51820',
      problem: null,
    });
  });

  test("unreachable: the tunnel's own sentence becomes the detail a person reads", () => {
    const problem = 'No handshake with gw.lan:51820 in 20 s: outgoing UDP to port 51820 may be blocked here.';
    const shown = withTunnel(report({ state: 'unreachable', lastHandshakeAt: null, problem }));
    expect(shown.tunnel).toEqual({ state: 'unreachable', line: 'Tunnel: cannot reach gateway gw.lan:51820', problem });
    expect(shown.detail).toBe(problem);
  });

  test('a tunnel container that keeps restarting, or stopped, is the problem, with where its log is', () => {
    const restarting = withTunnel(undefined, {
      ...pair,
      container: { running: false, restarting: true, exitCode: 1 },
    });
    expect(restarting.tunnel).toEqual({
      state: 'error',
      line: 'Tunnel: its container keeps restarting',
      problem:
        'The tunnel container ray-agent-tunnel does not stay up, so the agent has no network: see `docker logs ray-agent-tunnel` for why.',
    });
    expect(restarting.detail).toBe(restarting.tunnel?.problem);
    const stopped = withTunnel(undefined, { ...pair, container: { running: false, restarting: false, exitCode: 2 } });
    expect(stopped.tunnel?.line).toBe('Tunnel: its container stopped (exit code 2)');
    const gone = withTunnel(undefined, { ...pair, container: null });
    expect(gone.tunnel?.problem).toContain('is gone');
  });

  test('a tunnel stopped with its agent (not contributing) shows nothing', () => {
    const shown = view({
      contribute: false,
      container: { ...running, running: false, exitCode: 0 },
      agent: undefined,
      tunnel: { ...pair, container: { running: false, restarting: false, exitCode: 0 } },
    });
    expect(shown.phase).toBe('off');
    expect(shown.tunnel).toBeNull();
  });

  test('units: seconds, minutes, hours; bytes in B, kB, MB, GB', () => {
    expect(secondsAgo(NOW.getTime() - 119_000, NOW)).toBe('119 s');
    expect(secondsAgo(NOW.getTime() - 180_000, NOW)).toBe('3 min');
    expect(secondsAgo(NOW.getTime() - 3 * 3_600_000, NOW)).toBe('3 h');
    expect([512, 1_500, 812_345, 1_234_567, 5_000_000_000].map((bytes) => formatBytes(bytes))).toEqual([
      '512 B',
      '1.5 kB',
      '812.3 kB',
      '1.2 MB',
      '5.0 GB',
    ]);
    expect(formatBytes(812_345, 1_234_567)).toBe('0.8 MB');
  });
});

describe('policy, what runs now, the cluster and the update', () => {
  const policy = (mode: 'contributing' | 'stepping-aside' | 'paused', sentence: string) => ({
    mode,
    reason: mode === 'contributing' ? null : ('on-battery' as const),
    sentence,
    since: NOW.toISOString(),
  });
  const byName = [
    { name: 'work', count: 2 },
    { name: 'Trainer.step', count: 1 },
    { name: 'preprocess', count: 2 },
  ];

  test('a view without the new inputs still validates and carries empty values', () => {
    const v = view({});
    expect(v).toMatchObject({ policy: null, tasks: [], cluster: null, update: null });
  });

  test("tasks by name come from the agent's status, most first, then by name", () => {
    const v = view({ agent: ok(agentStatus({ tasks: { running: 5, byName } })) });
    expect(v.tasks).toEqual([
      { name: 'preprocess', count: 2 },
      { name: 'work', count: 2 },
      { name: 'Trainer.step', count: 1 },
    ]);
  });

  test('no task names from a stopped container, even if the last status named some', () => {
    const stopped = { ...running, running: false, exitCode: 0 };
    expect(view({ container: stopped, agent: ok(agentStatus({ tasks: { running: 5, byName } })) }).tasks).toEqual([]);
  });

  test("the sandbox line is the agent's self-test and count, and none from a stopped container", () => {
    const sandbox = {
      state: 'ready' as const,
      reason: null,
      kernel: '4.4.0',
      startSeconds: 0.9,
      slots: 2,
      running: 1,
      mode: 'any' as const,
      networkAllowed: false,
    };
    expect(view({ agent: ok(agentStatus({ sandbox })) }).sandbox).toEqual({
      state: 'ready',
      line: 'ready: 2 slots, 1 running',
    });
    const unavailable = {
      ...sandbox,
      state: 'unavailable' as const,
      reason: "Docker's /proc masks are in place",
      slots: 0,
      running: 0,
    };
    expect(view({ agent: ok(agentStatus({ sandbox: unavailable })) }).sandbox?.line).toBe(
      "unavailable: Docker's /proc masks are in place",
    );
    const strict = { ...sandbox, mode: 'sandboxed' as const, networkAllowed: true };
    expect(view({ agent: ok(agentStatus({ sandbox: strict })) }).sandbox?.line).toBe(
      'ready: 2 slots, 1 running; sandboxed work only, network allowed',
    );
    expect(view({ agent: ok(agentStatus({ sandbox: { ...unavailable, mode: 'sandboxed' } })) }).sandbox?.line).toBe(
      "unavailable (sandboxed work only, so this computer takes no work): Docker's /proc masks are in place",
    );
    const stopped = { ...running, running: false, exitCode: 0 };
    expect(view({ container: stopped, agent: ok(agentStatus({ sandbox })) }).sandbox).toBeNull();
    expect(view({ agent: ok(agentStatus({})) }).sandbox).toBeNull(); // an older agent says nothing
  });

  test('the cluster line comes from the settings, and is null when none is configured', () => {
    const cluster = { address: 'ray://ray-head.lan:10001', managerUrl: 'https://manager.lan:8443' };
    expect(view({ cluster }).cluster).toEqual(cluster);
    expect(view({ cluster: { address: '', managerUrl: '' } }).cluster).toBeNull();
  });

  test('the policy and update views pass through as given', () => {
    const p = policy('stepping-aside', 'Stepping aside: on battery; draining in 5 min');
    const update = { state: 'rolled-back' as const, sentence: 'Went back to the previous agent image.' };
    const v = view({ policy: p, update });
    expect(v.policy).toEqual(p);
    expect(v.update).toEqual(update);
    // Stepping aside does not change the phase: the tasks still run, slowly.
    expect(v.phase).toBe('contributing');
  });

  test('paused by the policy with contributing on: not "Starting the agent" but the sentence', () => {
    const stopped = { ...running, running: false, exitCode: 0 };
    const p = policy('paused', 'Paused: on battery; will resume on AC power');
    expect(view({ container: stopped, policy: p })).toMatchObject({
      phase: 'off',
      headline: 'Paused: on battery; will resume on AC power',
      detail: null,
    });
    expect(view({ container: undefined, agent: undefined, policy: p }).headline).toBe(p.sentence);
    // Without the policy the same facts read as starting; a failed container stays an error whatever the policy.
    expect(view({ container: stopped }).phase).toBe('starting');
    expect(view({ container: { ...stopped, exitCode: 2 }, policy: p }).phase).toBe('error');
    // The engine gone is still the first thing to fix.
    expect(
      view({ engine: { kind: 'not-running', message: 'Docker is not running', fix: 'Start it' }, policy: p }).phase,
    ).toBe('docker-stopped');
  });
});
