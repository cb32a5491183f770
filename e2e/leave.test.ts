import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LeaveReport, StatusDocument } from '@ray-agent/protocol';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { leaveCluster } from '../controller/src/app/leave.js';
import { TokenVault } from '../controller/src/app/token-vault.js';
import { AgentContainer } from '../controller/src/container/agent-container.js';
import { resolveDockerEndpointFromProcess } from '../controller/src/engine/docker-endpoint.js';
import { createDockerode } from '../controller/src/engine/docker-engine.js';
import { testKeychainCodec } from '../controller/test/support/test-keychain-codec.js';
import { AGENT_IMAGE, publishedPort, TestCluster } from './support/cluster.js';
import { freePort, readVolumeFile } from './support/faults.js';
import { docker, run, waitFor } from './support/run.js';

/**
 * Issue 10, part 8: "Leave this cluster" end to end. A real Ray head, the real manager over TLS (private CA) and the
 * pair AgentContainer.up makes, contributing; leaveCluster drains it, deregisters it and removes what the app made.
 * Checked from outside: Docker's own listing, the manager's listing, and the credential's next heartbeat.
 */
const MiB = 1024 ** 2;
const cluster = new TestCluster();
const name = `ra-leave-e2e-${cluster.id}`;
// An image of this test alone (the agent image plus a label, so its own ID): leave may remove it, and the image
// other tests run is never at stake.
const image = `ra-leave-e2e-${cluster.id}:test`;
let settingsDir = '';

beforeAll(async () => {
  await cluster.start();
  await run('docker', ['build', '-t', image, '-'], {
    input: `FROM ${AGENT_IMAGE}\nLABEL ra-leave-e2e="${cluster.id}"\n`,
    timeoutMs: 120_000,
  }).then((result) => {
    if (result.code !== 0) throw new Error(`docker build: ${result.stderr}`);
  });
  settingsDir = mkdtempSync(join(tmpdir(), 'ra-leave-e2e-settings-'));
});

afterAll(async () => {
  // The cluster first: it keeps every tracked container's log in e2e/artifacts. Then whatever a failed leave left:
  // this test's containers and volumes by name, and its image.
  await cluster.stop();
  const containers = (await run('docker', ['ps', '-aq', '--filter', `name=^/${name}`])).stdout.split('\n');
  if (containers.some(Boolean)) await run('docker', ['rm', '-f', '-v', ...containers.filter(Boolean)]);
  await run('docker', ['volume', 'rm', '-f', `${name}-state`, `${name}-spill`, `${name}-tunnel`]);
  await run('docker', ['image', 'rm', '-f', image]);
  if (settingsDir) rmSync(settingsDir, { recursive: true, force: true });
});

test('a contributing agent leaves: drained, deregistered, nothing of it left in Docker, the manager says left', async () => {
  const dockerode = createDockerode(resolveDockerEndpointFromProcess());
  const agent = new AgentContainer(dockerode, { name });
  // Tracked so that a failed run keeps their logs in e2e/artifacts (and removes them).
  await cluster.track(name);
  await cluster.track(agent.tunnelName);
  const statusPort = await freePort();
  const caPem = readFileSync(cluster.pki.caCert, 'utf8');
  const up = await agent.up({
    image,
    clusterAddress: `ray://${cluster.head}:10001`,
    managerUrl: `https://${cluster.manager}:8443/api/register`,
    cpus: 1,
    memoryBytes: 1536 * MiB,
    statusPort,
    token: cluster.enrollmentToken,
    managerCaPem: caPem,
    drainDeadlineSeconds: 5,
    network: cluster.network,
    name,
  });
  expect(up.outcome).toBe('created');
  let seen = 'no status yet';
  const contributing = await waitFor(
    'the agent to contribute',
    async () => {
      const response = await fetch(`http://127.0.0.1:${statusPort}/status`);
      const body = (await response.json()) as StatusDocument;
      seen = `${body.state}, registration ${body.registration.state}, ray ${body.ray.state}`;
      return body.state === 'contributing' ? body : undefined;
    },
    180_000,
  ).catch((error: Error) => {
    throw new Error(`${error.message} (last status: ${seen})`);
  });
  const saved = JSON.parse(await readVolumeFile(`${name}-state`, 'credentials.json')) as {
    providerId: string;
    credential: string;
  };
  expect(contributing.registration.providerId).toBe(saved.providerId);

  // What the app keeps on this machine: the settings and the saved token.
  writeFileSync(join(settingsDir, 'config.json'), '{\n\t"version": 4\n}\n');
  const vault = new TokenVault(settingsDir, testKeychainCodec());
  expect(vault.set(cluster.enrollmentToken)).toEqual({ ok: true });

  const lines: string[] = [];
  const managerUrl = `https://localhost:${await publishedPort(cluster.manager, 8443)}`;
  const report: LeaveReport = await leaveCluster({
    docker: dockerode,
    agent,
    settingsDir,
    vault,
    managerUrl,
    managerCaPem: caPem,
    image,
    log: (line) => lines.push(line),
  });

  expect(report.leftovers, lines.join('\n')).toEqual([]);
  expect(report.deregistered).toBe(true);
  expect(report.removed).toEqual(
    expect.arrayContaining([
      `provider ${saved.providerId} at the manager (deregistered)`,
      `the container ${name}`,
      `the container ${name}-tunnel`,
      `the volume ${name}-state`,
      `the volume ${name}-spill`,
      `the volume ${name}-tunnel`,
      `the image ${image}`,
      'the saved enrollment token',
      'the settings',
    ]),
  );
  // Docker's own word: no container, volume or image of this agent.
  expect(await docker('ps', '-a', '--filter', `name=^/${name}`, '--format', '{{.Names}}')).toBe('');
  expect((await docker('volume', 'ls', '--format', '{{.Name}}')).split('\n').filter((v) => v.startsWith(name))).toEqual(
    [],
  );
  expect((await run('docker', ['image', 'inspect', image])).code).not.toBe(0);
  expect(readdirSync(settingsDir)).toEqual([]);

  // The manager's word: the provider left, after the agent drained and said `stopped` (the drain came first).
  const listed = (await cluster.providers()).find((p) => p.providerId === saved.providerId);
  expect(listed).toMatchObject({ health: 'left', lastState: 'stopped', revokedAt: null });
  expect(listed?.leftAt).toEqual(expect.any(String));
  // The credential is dead: a heartbeat with it is refused.
  const dispatcher = new Agent({ connect: { ca: caPem } });
  try {
    const response = await request(`${managerUrl}/api/heartbeat`, {
      method: 'POST',
      dispatcher,
      headers: { authorization: `Bearer ${saved.credential}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        providerId: saved.providerId,
        bootId: randomUUID(),
        state: 'contributing',
        rayNode: 'joined',
        cpuPercent: 1,
        memoryBytes: 1,
        memoryPercent: 1,
        activeTasks: 0,
        recentErrors: [],
        sentAt: new Date().toISOString(),
      }),
    });
    const text = await response.body.text();
    expect(response.statusCode, text).toBe(401);
    expect(text).toContain('left the cluster');
  } finally {
    await dispatcher.close();
  }
  expect(JSON.stringify(report) + lines.join('\n')).not.toContain(saved.credential);
});
