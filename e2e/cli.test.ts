import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SETTINGS, StatusView, stopTimeoutSeconds } from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PLAYGROUND_NETWORKS } from '../controller/src/playground/playground-network.js';
import { expectPair, TestCluster } from './support/cluster.js';
import { docker, run, waitFor } from './support/run.js';

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
const cliWith = (cliEnv: NodeJS.ProcessEnv, ...args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    import('node:child_process').then(({ execFile }) =>
      execFile('node', [CLI, ...args], { env: cliEnv, timeout: 400_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
  });
const cli = (...args: string[]) => cliWith(env, ...args);

afterAll(async () => {
  await cli('down', '--local');
  await run('docker', ['volume', 'rm', '-f', `${container}-state`, `${container}-spill`, `${container}-tunnel`]);
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

/**
 * A machine without a desktop: `join` against a real Ray head and the real manager over TLS (a private CA), then
 * `ray-agent run` applies the policy, `config set` changes a limit it applies live, `config get` shows it, and
 * SIGTERM stops run and, with onQuit = stop, the agent. The agent runs alone (direct) on the cluster's network.
 */
describe('ray-agent join, config and run', () => {
  const cluster = new TestCluster();
  const joinDir = mkdtempSync(join(tmpdir(), 'ra-cli-join-'));
  const joined = `ra-cli-join-${process.pid}`;
  const tokenFile = join(joinDir, 'enrollment-token');
  const joinEnv = {
    ...process.env,
    RAY_AGENT_SETTINGS_DIR: joinDir,
    RAY_AGENT_CONTAINER: joined,
    RAY_AGENT_DOCKER_NETWORK: cluster.network,
  };
  const joinCli = (...args: string[]) => cliWith(joinEnv, ...args);
  let runner: ChildProcess | undefined;
  let runOut = '';

  beforeAll(async () => {
    // Its own status port, as the window would be told; join keeps what it does not set.
    writeFileSync(
      join(joinDir, 'config.json'),
      JSON.stringify({ ...DEFAULT_SETTINGS, statusPort: 19765 + (process.pid % 1000) }),
    );
    writeFileSync(tokenFile, `${cluster.enrollmentToken}\n`, { mode: 0o600 });
    await cluster.start();
    // On a loaded machine a Ray head can time out in its own start ("the current node timed out during startup")
    // and exit: that is the test cluster's problem, not the join's, so it is started again until its GCS answers.
    await waitFor(
      'the Ray head to answer',
      async () => {
        if ((await docker('inspect', '--format', '{{.State.Running}}', cluster.head)) !== 'true') {
          await run('docker', ['start', cluster.head]);
          return undefined;
        }
        const probe = await run('docker', ['exec', cluster.head, 'ray', 'status', '--address', '127.0.0.1:6379'], {
          timeoutMs: 60_000,
        });
        return probe.code === 0 ? true : undefined;
      },
      300_000,
      2000,
    );
  });

  afterAll(async () => {
    runner?.kill('SIGKILL');
    await run('docker', ['rm', '-f', '-v', joined]);
    await run('docker', ['volume', 'rm', '-f', `${joined}-state`]);
    await cluster.stop();
  });

  test('join saves the cluster, delivers the token and reaches contributing', async () => {
    const result = await joinCli(
      'join',
      '--head',
      `ray://${cluster.head}:10001`,
      '--manager',
      `https://${cluster.manager}:8443`,
      '--token-file',
      tokenFile,
      '--manager-ca',
      cluster.pki.caCert,
      '--network',
      'direct',
      '--cpus',
      '2',
      '--memory',
      '4g',
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`head = ray://${cluster.head}:10001 (was not set)`);
    expect(result.stdout).toContain('network = direct (was overlay)');
    expect(result.stdout).toMatch(/^Contributing: \d+ tasks? running$/m);
    expect(result.stdout).toMatch(/registration: registered \(prv-[a-z0-9-]+\)/);
    expect(result.stderr).toContain('the enrollment token was delivered to the agent');
    expect(result.stdout + result.stderr).not.toContain(cluster.enrollmentToken);
    expect((await cluster.providers()).length).toBe(1);
    const inspect = JSON.parse(await docker('inspect', joined))[0];
    expect(JSON.stringify(inspect.Config.Env)).not.toContain(cluster.enrollmentToken);
    expect(Object.keys(inspect.NetworkSettings.Networks)).toEqual([cluster.network]);
  });

  test('run applies the policy; config set cpus 1 reaches the running agent live; config get shows it', async () => {
    runner = spawn('node', [CLI, 'run'], { env: joinEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    runner.stdout?.on('data', (chunk: Buffer) => {
      runOut += chunk.toString();
    });
    runner.stderr?.on('data', (chunk: Buffer) => {
      runOut += chunk.toString();
    });
    await waitFor(
      'run to log the policy',
      async () => (/ policy: Contributing/.test(runOut) ? true : undefined),
      60_000,
    );
    const before = JSON.parse(await docker('inspect', joined))[0];

    const set = await joinCli('config', 'set', 'cpus', '1');
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toBe('cpus = 1 (was 2)\n');
    // What the person sees, and what run logged, in a failure's message.
    const seen = () => `${set.stderr}\n${runOut}`;
    expect(set.stderr).toContain(`the running \`ray-agent run\` (pid ${runner.pid}) picks it up now`);
    await waitFor(
      'the container to hold 1 CPU',
      async () =>
        (await docker('inspect', '--format', '{{.HostConfig.NanoCpus}}', joined)) === '1000000000' ? true : undefined,
      60_000,
    );
    // Live: the same container, not restarted.
    const after = JSON.parse(await docker('inspect', joined))[0];
    expect(after.Id, seen()).toBe(before.Id);
    expect(after.State.StartedAt, seen()).toBe(before.State.StartedAt);
    expect(runOut).toMatch(/settings changed: cpus/);

    const get = await joinCli('config', 'get');
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toContain('\ncpus = 1\n');
    expect(get.stdout).toContain(`head = ray://${cluster.head}:10001\n`);
    expect(get.stdout).toContain('token = delivered to the agent (never shown)\n');
    expect(get.stdout + get.stderr + runOut).not.toContain(cluster.enrollmentToken);
  });

  test('SIGTERM stops run and, with onQuit = stop, drains and stops the agent; run exits 0', async () => {
    const child = runner;
    if (!child) throw new Error('run did not start');
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited, runOut).toBe(0);
    expect(runOut).toContain('draining and stopping the agent (onQuit = stop)');
    expect(await docker('inspect', '--format', '{{.State.Running}}', joined), runOut).toBe('false');
    runner = undefined;
  });
});
