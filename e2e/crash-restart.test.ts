import { identityLeaseMs } from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Agent0, TestCluster } from './support/cluster.js';
import { copyVolume, PROVIDER_LABEL, rayNodes, runTasks, savedProviderId, secondsSince } from './support/faults.js';
import { docker, run, waitFor } from './support/run.js';

/**
 * Crash-only: every unclean end of an agent (SIGKILL of the container, the agent process killed inside it, as an
 * OOM kill or a crash does) ends with the same provider contributing again by itself, under the same provider ID,
 * while a real copy of its state volume running at the same time is still refused. Real Docker, Ray, manager, TLS.
 */
const cluster = new TestCluster();
const figures: Array<[string, string]> = [];
/** The test manager's heartbeat interval (TestCluster starts it with --heartbeat-interval 2). */
const INTERVAL_SECONDS = 2;
const RESTART = ['--cpus=2', '--memory=4g', '--restart=unless-stopped'];
let agent: Agent0;
let providerId: string;

function figure(name: string, value: string): void {
  figures.push([name, value]);
  console.warn(`[figure] ${name}: ${value}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function inspect(name: string) {
  return JSON.parse(await docker('inspect', name))[0] as {
    State: { Running: boolean; ExitCode: number; StartedAt: string };
    RestartCount: number;
  };
}

/** Live Ray nodes that carry the provider's label. */
async function liveNodesOf(provider: string) {
  return (await rayNodes(cluster.head)).filter((node) => node.alive && node.labels[PROVIDER_LABEL] === provider);
}

/** A task aimed at the provider's own resource runs on it. */
async function taskRunsOn(provider: string): Promise<void> {
  const outcome = await runTasks(cluster, { count: 1, seconds: 1, resource: `provider:${provider}` });
  expect(outcome.results.map((result) => result.error)).toEqual([null]);
}

beforeAll(async () => {
  await cluster.start();
  agent = await cluster.startAgent({ flags: RESTART });
  const status = await agent.waitForStatus('contributing', (s) => s.state === 'contributing', 180_000);
  providerId = status.registration.providerId ?? '';
  expect(providerId).not.toBe('');
});

afterAll(async () => {
  console.warn(`figures:\n${figures.map(([name, value]) => `  ${name}: ${value}`).join('\n')}`);
  await cluster.stop();
});

describe('an unclean end never locks the provider out', () => {
  test('docker kill (SIGKILL, no last heartbeat) and an immediate start: contributing again as the same provider', async () => {
    // A heartbeat from the running agent right before the kill, so the manager holds a fresh lease for it.
    const beatBefore = Date.now();
    await agent.waitForStatus('a fresh heartbeat', (s) => Date.parse(s.heartbeat.lastSuccessAt ?? '') > beatBefore);
    const killedAt = Date.now();
    await docker('kill', agent.name);
    expect((await inspect(agent.name)).State.Running).toBe(false);
    await docker('start', agent.name);
    await agent.restarted();
    const back = await agent.waitForStatus(
      'contributing after the kill',
      (s) => s.state === 'contributing' && s.ray.state === 'joined' && s.heartbeat.state === 'healthy',
      180_000,
    );
    const seconds = secondsSince(killedAt);
    expect(back.registration.providerId).toBe(providerId);
    expect(await savedProviderId(agent.volume)).toBe(providerId);
    // Not a new registration: the same provider row, one registration, healthy.
    const providers = await cluster.providers();
    expect(providers).toHaveLength(1);
    expect(providers[0]).toMatchObject({ providerId, registrations: 1, health: 'healthy' });
    await taskRunsOn(providerId);
    figure(
      'docker kill + start → contributing',
      `${seconds} s (identity lease ${identityLeaseMs(INTERVAL_SECONDS) / 1000} s at a ${INTERVAL_SECONDS} s heartbeat interval)`,
    );
  });

  test('the agent process SIGKILLed inside the container (as an OOM kill or a crash): the restart policy brings the same provider back', async () => {
    const before = await inspect(agent.name);
    const killedAt = Date.now();
    // The agent is the node process running agent.mjs (after its V8 flags); its parent (tini) then exits and Docker
    // restarts the container.
    // The exec itself may die with the container, so its exit code says nothing: the restart count below does.
    await run('docker', [
      'exec',
      agent.name,
      'sh',
      '-c',
      'for p in /proc/[0-9]*; do if tr "\\0" " " < $p/cmdline | grep -q "^node .*/opt/ray-agent/agent.mjs"; then kill -9 "$(basename "$p")"; fi; done',
    ]);
    await waitFor(
      'the restart policy to restart the container',
      async () => ((await inspect(agent.name)).RestartCount > before.RestartCount ? true : undefined),
      120_000,
    );
    await agent.restarted();
    const back = await agent.waitForStatus(
      'contributing after the crash',
      (s) => s.state === 'contributing' && s.ray.state === 'joined' && s.heartbeat.state === 'healthy',
      180_000,
    );
    const seconds = secondsSince(killedAt);
    expect(back.registration.providerId).toBe(providerId);
    const providers = await cluster.providers();
    expect(providers).toHaveLength(1);
    expect(providers[0]).toMatchObject({ providerId, registrations: 1, health: 'healthy' });
    await taskRunsOn(providerId);
    figure('agent SIGKILLed inside → restarted → contributing', `${seconds} s`);
  });

  test('a copy of the state volume running at the same time is refused again and again, never joins Ray, and takes over only once the original stopped', async () => {
    // The original first: contributing, with a fresh heartbeat, so the manager holds a live lease for it.
    const beatBefore = Date.now();
    await agent.waitForStatus(
      'the original contributing with a fresh heartbeat',
      (s) => s.state === 'contributing' && Date.parse(s.heartbeat.lastSuccessAt ?? '') > beatBefore,
      180_000,
    );
    const copyVolumeName = `copy-${cluster.id}-state`;
    await copyVolume(agent.volume, copyVolumeName);
    const startedAt = Date.now();
    const copy = await cluster.startAgent({ name: `copy-${cluster.id}`, volume: copyVolumeName });
    // Refused more than once: past the first refusal (which a restart after a kill also sees), the copy says so.
    const refused = await copy.waitForStatus(
      'refused as a copy',
      (s) => s.state === 'error' && s.lastError?.code === 'identity_in_use',
      120_000,
    );
    figure('copy refused as a copy (state error)', `${secondsSince(startedAt)} s after docker run`);
    expect(refused.registration.providerId).toBe(providerId);
    expect(refused.lastError?.message).toMatch(/^identity in use: another agent is already running as this provider/);
    // Several leases later the copy is still refused and its Ray node never started; the original still contributes.
    await sleep(3 * identityLeaseMs(INTERVAL_SECONDS));
    const still = await copy.status();
    expect(still.state).toBe('error');
    expect(still.lastError?.code).toBe('identity_in_use');
    expect(['not_started', 'stopped']).toContain(still.ray.state);
    expect(still.ray.joinedAt).toBeNull();
    const original = await agent.status();
    expect(original.state).toBe('contributing');
    expect(original.heartbeat.state).toBe('healthy');
    const nodes = await liveNodesOf(providerId);
    expect(nodes).toHaveLength(1);
    expect(nodes[0]?.ip).toBe(original.ray.nodeIp);
    // No restart storm: the copy stays up, saying why.
    expect((await inspect(copy.name)).RestartCount).toBe(0);

    // The original stops cleanly (its last heartbeat says so): the copy, the newest boot, takes the provider over.
    const stoppedAt = Date.now();
    await docker('stop', '-t', '60', agent.name);
    const took = await copy.waitForStatus(
      'the copy contributing once the original stopped',
      (s) => s.state === 'contributing' && s.ray.state === 'joined',
      180_000,
    );
    figure('copy takes over after the original stopped', `${secondsSince(stoppedAt)} s after docker stop`);
    expect(took.registration.providerId).toBe(providerId);
    await waitFor(
      'one live Ray node for the provider, the copy',
      async () => {
        const live = await liveNodesOf(providerId);
        return live.length === 1 && live[0]?.ip === took.ray.nodeIp ? true : undefined;
      },
      120_000,
    );
    await taskRunsOn(providerId);
    await run('docker', ['rm', '-f', copy.name]);
  });
});
