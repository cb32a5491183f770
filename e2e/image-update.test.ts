import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StatusDocument } from '@ray-agent/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UpdateLoop, type UpdateView } from '../controller/src/app/update-loop.js';
import { AgentContainer, type AgentSpec } from '../controller/src/container/agent-container.js';
import { previousRef } from '../controller/src/container/image-update.js';
import { resolveDockerEndpointFromProcess } from '../controller/src/engine/docker-endpoint.js';
import { createDockerode } from '../controller/src/engine/docker-engine.js';
import { type LocalRegistry, startLocalRegistry } from '../controller/test/support/local-registry.js';
import { buildImage, imageId, imageIdOrNull, publishAs } from '../controller/test/support/registry-images.js';
import { AGENT_IMAGE, TestCluster } from './support/cluster.js';
import { freePort, runTasks } from './support/faults.js';
import { docker, run, waitFor } from './support/run.js';

/**
 * Updates that never kill work, end to end: Debian's docker-registry on loopback serves the agent image under a
 * tag; the real agent runs from it in a real cluster (Ray head, manager over TLS); the loop pulls a newer image,
 * waits for the policy, switches after a drain (a task running at the switch returns its result), and rolls back a
 * broken one. One cluster for both cases.
 */
const MiB = 1024 ** 2;
let registry: LocalRegistry;
let cluster: TestCluster;
let agent: AgentContainer;
let spec: AgentSpec;
let ref: string;
let stateDir: string;
let firstId: string;
const images: string[] = [];
const docker0 = createDockerode(resolveDockerEndpointFromProcess());

/** The agent's status, read loosely: only the fields this test needs (the image may predate newer fields). */
async function agentStatus(): Promise<Pick<StatusDocument, 'state' | 'lastError' | 'registration' | 'tasks'>> {
  const response = await fetch(`http://127.0.0.1:${spec.statusPort}/status`);
  return (await response.json()) as StatusDocument;
}

async function isContributing(): Promise<boolean> {
  return (await agentStatus().catch(() => null))?.state === 'contributing';
}

async function runningImage(): Promise<string> {
  return docker('inspect', '--format', '{{.Image}}', agent.name);
}

async function waitContributing(what: string): Promise<void> {
  let last = '';
  await waitFor(
    what,
    async () => {
      const status = await agentStatus();
      last = `${status.state}: ${status.lastError?.message ?? ''}`;
      return status.state === 'contributing' ? true : undefined;
    },
    240_000,
    1_000,
  ).catch((error) => {
    throw new Error(`${(error as Error).message} (last status ${last})`);
  });
}

beforeAll(async () => {
  registry = await startLocalRegistry();
  cluster = new TestCluster();
  await cluster.start();
  ref = `${registry.address}/ra-update-${cluster.id}/ray-agent:stable`;
  stateDir = mkdtempSync(join(tmpdir(), 'ra-update-e2e-'));
  // The released image: the agent image, pushed under the tag people configure.
  firstId = await imageId(AGENT_IMAGE);
  await docker('tag', AGENT_IMAGE, ref);
  await docker('push', ref);
  const name = `ra-update-${cluster.id}`;
  agent = new AgentContainer(docker0, { name });
  await cluster.track(name);
  spec = {
    image: ref,
    clusterAddress: `ray://${cluster.head}:10001`,
    managerUrl: `https://${cluster.manager}:8443/api/register`,
    cpus: 1,
    memoryBytes: 1536 * MiB,
    statusPort: await freePort(),
    token: cluster.enrollmentToken,
    managerCaPem: readFileSync(cluster.pki.caCert, 'utf8'),
    drainDeadlineSeconds: 40,
    tunnel: false,
    network: cluster.network,
    name,
  };
  await agent.up(spec);
  await waitContributing('the agent of the first release to contribute');
}, 600_000);

afterAll(async () => {
  // The cluster first: it keeps every tracked container's log (the agent's too) before removing them.
  await cluster?.stop();
  await agent?.down({ remove: true, removeState: true }).catch(() => undefined);
  await run('docker', ['rmi', ref, previousRef(ref), ...images]);
  await registry?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe('image updates', () => {
  const views: UpdateView[] = [];
  const notes: string[] = [];
  let allowed = false;
  let loop: UpdateLoop;
  let goodId: string;

  /** One controller's loop; the broken case gets a short window, the good one the product's default. */
  function start(contributingWithinMs?: number): UpdateLoop {
    return new UpdateLoop({
      docker: docker0,
      agent,
      settings: () => ({ image: ref, updates: 'auto' }),
      spec: () => spec,
      mayDisrupt: () => allowed,
      stateDir,
      ...(contributingWithinMs !== undefined ? { contributingWithinMs } : {}),
      pollMs: 1_000,
      isContributing,
      onView: (view) => views.push(view),
      notify: (text) => notes.push(text),
    });
  }
  afterAll(() => loop?.stop());

  test('a newer image: pulled in the background, switched only when the policy allows, after a drain', async () => {
    loop = start();
    await loop.checkNow();
    expect(loop.lastCheck?.kind).toBe('current');

    const tag = `ra-update-good-${cluster.id}:1`;
    images.push(tag);
    goodId = await buildImage(tag, `FROM ${AGENT_IMAGE}\nCOPY marker.bin /opt/marker.bin\nLABEL ra-update=good\n`, {
      randomBytes: 2 * MiB,
    });
    await publishAs(tag, ref, { forget: true });
    expect(await imageIdOrNull(goodId)).toBeNull();

    const cycle = loop.checkNow();
    await waitFor(
      'the update to wait for the policy',
      async () => (loop.view?.state === 'waiting' ? true : undefined),
      180_000,
    );
    // Pulled, yet the agent and the tag are the old image's while the policy says no.
    expect(await imageIdOrNull(goodId)).toBe(goodId);
    expect(await imageId(ref)).toBe(firstId);
    expect(await runningImage()).toBe(firstId);

    // A task runs when the switch comes; with no retries, it returns only if the old node drained.
    const providerId = (await agentStatus()).registration.providerId ?? '';
    const tasks = runTasks(
      cluster,
      { count: 1, seconds: 15, resource: `provider:${providerId}`, maxRetries: 0 },
      300_000,
    );
    await waitFor('a running task', async () => ((await agentStatus()).tasks.running >= 1 ? true : undefined), 120_000);
    allowed = true;
    await cycle;

    const outcome = await tasks;
    expect(outcome.results).toEqual([expect.objectContaining({ error: null })]);
    expect(await runningImage()).toBe(goodId);
    expect(await imageId(ref)).toBe(goodId);
    expect(await isContributing()).toBe(true);
    expect(notes).toEqual([]);
    expect(views.map((view) => view?.state ?? null)).toEqual(
      expect.arrayContaining(['available', 'pulling', 'waiting', 'switching']),
    );
    expect(loop.view).toBeNull();
  });

  test('a broken image: switched, not contributing in time, rolled back, notified once, not retried', async () => {
    const tag = `ra-update-broken-${cluster.id}:1`;
    images.push(tag);
    const brokenId = await buildImage(
      tag,
      `FROM ${AGENT_IMAGE}\nCOPY marker.bin /opt/marker.bin\nENTRYPOINT ["sh", "-c", "exit 1"]\n`,
    );
    const brokenDigest = await publishAs(tag, ref, { forget: true });

    views.length = 0;
    await loop.stop();
    // This image never contributes: a short window only bounds the test (the good case used the default 5 min).
    loop = start(60_000);
    await loop.checkNow();
    expect(views).toContainEqual(expect.objectContaining({ state: 'switching' }));
    expect(loop.view).toMatchObject({ state: 'rolled-back' });
    expect(notes).toHaveLength(1);
    expect(await runningImage()).toBe(goodId);
    expect(await imageId(ref)).toBe(goodId);
    expect(await imageIdOrNull(brokenId)).toBeNull();
    await waitContributing('the rolled-back agent to contribute again');

    const containerId = await docker('inspect', '--format', '{{.Id}}', agent.name);
    await loop.checkNow();
    expect(loop.lastCheck).toMatchObject({ kind: 'rejected', digest: brokenDigest });
    expect(await imageIdOrNull(brokenId)).toBeNull();
    expect(await docker('inspect', '--format', '{{.Id}}', agent.name)).toBe(containerId);
    expect(notes).toHaveLength(1);
  });
});
