import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SETTINGS, StatusView, stopTimeoutSeconds } from '@ray-agent/protocol';
import { afterAll, describe, expect, test } from 'vitest';
import { PLAYGROUND_NETWORKS } from '../controller/src/playground-network.js';
import { expectPair } from './support/cluster.js';
import { run } from './support/run.js';

/**
 * The `ray-agent` CLI end to end: `up --local` starts a Ray head, the manager and the agent on this machine and
 * runs a sample job; `status` reports the agent contributing; `down --local` removes it all.
 */
const CLI = join(import.meta.dirname, '..', 'controller', 'dist', 'ray-agent.cjs');
const settingsDir = mkdtempSync(join(tmpdir(), 'rap-cli-'));
const container = `rap-cli-${process.pid}`;
const statusPort = 18765 + (process.pid % 1000);
writeFileSync(join(settingsDir, 'config.json'), JSON.stringify({ ...DEFAULT_SETTINGS, statusPort }));
const env = { ...process.env, RAY_AGENT_SETTINGS_DIR: settingsDir, RAY_AGENT_CONTAINER: container };
const cli = (...args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    import('node:child_process').then(({ execFile }) =>
      execFile('node', [CLI, ...args], { env, timeout: 400_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
  });

afterAll(async () => {
  await cli('down', '--local');
  await run('docker', ['volume', 'rm', '-f', `${container}-state`, `${container}-tunnel`]);
});

describe('ray-agent CLI', () => {
  test('up --local brings up a contributing agent and a sample job whose tasks it counts', async () => {
    const up = await cli('up', '--local');
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/^Contributing: \d+ tasks? running$/m);
    expect(up.stdout).toMatch(/registration: registered \(prv-[a-z0-9-]+\)/);
    expect(up.stdout).toMatch(/while the job ran, the agent counted [1-9]\d* running tasks/);
    expect(up.stdout).toContain('sample job results: [0, 1, 4, 9, 16, 25, 36, 49]');
    // The playground's provider is behind its home router: it reaches the cluster only through its tunnel.
    expect(up.stdout).toMatch(/^\s+tunnel: up\b/m);
    // The pair the one builder makes: the tunnel on the home network publishes the status port on loopback.
    const { agent, tunnel } = await expectPair(container, {
      statusPort,
      network: PLAYGROUND_NETWORKS.home.name,
      secrets: [],
    });
    // The agent: the stop budget of the contract, the token only as a file; the tunnel gets no token at all.
    expect(agent.Config.StopTimeout).toBe(stopTimeoutSeconds(25));
    expect(agent.Config.Env).toContain('AGENT_TOKEN_FILE=/var/lib/ray-agent/secrets/enrollment-token');
    expect(JSON.stringify(agent.Config.Env)).not.toMatch(/AGENT_TOKEN=/);
    expect(JSON.stringify(tunnel.Config.Env)).not.toMatch(/AGENT_TOKEN/);
  });

  test('status --json reports the same agent contributing', async () => {
    const status = await cli('status', '--json');
    expect(status.code, status.stderr).toBe(0);
    const view = StatusView.parse(JSON.parse(status.stdout));
    expect(view.phase).toBe('contributing');
    expect(view.registration.state).toBe('registered');
    expect(view.heartbeat.healthy).toBe(true);
    expect(view.tunnel?.state).toBe('up');
    expect(view.limits).toEqual({
      cpus: DEFAULT_SETTINGS.cpus,
      memoryBytes: DEFAULT_SETTINGS.memoryMiB * 1024 ** 2,
      rayCpus: DEFAULT_SETTINGS.cpus,
    });
  });

  test('down --local stops the agent and removes the playground', async () => {
    const down = await cli('down', '--local');
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toContain('stopped');
    const left = await run('docker', ['ps', '-a', '--format', '{{.Names}}']);
    expect(left.stdout).not.toContain(container);
    expect(left.stdout).not.toContain('ray-agent-playground');
    const status = await cli('status', '--json');
    expect(StatusView.parse(JSON.parse(status.stdout)).phase).toBe('off');
  });
});
