import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UpdateLoop, type UpdateLoopOptions, type UpdateView } from '../src/app/update-loop.js';
import { UPDATE_STATE_FILE, type UpdateState } from '../src/app/update-state.js';
import { AgentContainer, type AgentSpec } from '../src/container/agent-container.js';
import { previousRef } from '../src/container/image-update.js';
import { resolveDockerEndpointFromProcess } from '../src/engine/docker-endpoint.js';
import { createDockerode } from '../src/engine/docker-engine.js';
import { docker, dockerQuiet, removeByPrefix, runPrefix } from './support/docker-cli.js';
import { freePort } from './support/free-port.js';
import { type LocalRegistry, startLocalRegistry } from './support/local-registry.js';
import { buildImage, imageId, imageIdOrNull, publishAs } from './support/registry-images.js';

/**
 * The loop over the real engine, a real registry on loopback and the real AgentContainer, with tiny images instead
 * of the agent (a good one sleeps, a broken one exits 1): the whole flow in seconds. The agent's own "contributing"
 * needs Ray, so here it stands in as "the container has run 2 s without a restart" (e2e/image-update.test.ts
 * has the real agent). A controller killed mid-switch is a real child process, SIGKILLed.
 */
const prefix = runPrefix('uloop');
const MiB = 1024 ** 2;
const GOOD = 'FROM debian:bookworm-slim\nCOPY marker.bin /marker.bin\nCMD ["sleep", "infinity"]\n';
const BROKEN = 'FROM debian:bookworm-slim\nCOPY marker.bin /marker.bin\nCMD ["sh", "-c", "exit 1"]\n';
let registry: LocalRegistry;
let dockerode: Dockerode;
let agent: AgentContainer;
let ref: string;
let spec: AgentSpec;
let stateDir: string;
let n = 0;
const images: string[] = [];

async function release(dockerfile: string): Promise<{ id: string; digest: string }> {
  const tag = `${prefix}-build:${++n}`;
  images.push(tag);
  const id = await buildImage(tag, dockerfile);
  return { id, digest: await publishAs(tag, ref, { forget: true }) };
}

/** Stands in for the agent's status: running, not restarting, up 2 s, never restarted. */
async function runsSteadily(): Promise<boolean> {
  const status = await agent.status();
  if (!status.running || status.restarting || status.restartCount > 0 || status.startedAt === null) return false;
  return Date.now() - Date.parse(status.startedAt) > 2_000;
}

async function runningImage(): Promise<string> {
  return docker(['inspect', '--format', '{{.Image}}', agent.name]);
}

function readState(): UpdateState {
  return JSON.parse(readFileSync(path.join(stateDir, UPDATE_STATE_FILE), 'utf8')) as UpdateState;
}

function loop(overrides: Partial<UpdateLoopOptions> & { views?: UpdateView[]; notes?: string[] } = {}) {
  const views = overrides.views ?? [];
  const notes = overrides.notes ?? [];
  return new UpdateLoop({
    docker: dockerode,
    agent,
    settings: () => ({ image: ref, updates: 'auto' }),
    spec: () => spec,
    mayDisrupt: () => true,
    stateDir,
    contributingWithinMs: 8_000,
    pollMs: 250,
    isContributing: runsSteadily,
    onView: (view) => views.push(view),
    notify: (text) => notes.push(text),
    // UPDATE_LOOP_LOG=1 shows the loop's lines, for a person reading a failure.
    log: (line) => process.env.UPDATE_LOOP_LOG && process.stdout.write(`${new Date().toISOString()} ${line}\n`),
    ...overrides,
  });
}

beforeAll(async () => {
  registry = await startLocalRegistry();
  dockerode = createDockerode(resolveDockerEndpointFromProcess());
  ref = `${registry.address}/${prefix}:stable`;
  stateDir = mkdtempSync(path.join(tmpdir(), 'ra-update-loop-'));
  agent = new AgentContainer(dockerode, { name: `${prefix}-agent` });
  spec = {
    image: ref,
    clusterAddress: 'ray://head.invalid:10001',
    managerUrl: 'https://manager.invalid',
    cpus: 1,
    memoryBytes: 512 * MiB,
    statusPort: await freePort(),
    tunnel: false,
    drainDeadlineSeconds: 0,
    name: `${prefix}-agent`,
  };
  // The first release, pulled and running, as a person's machine has it.
  const first = await release(GOOD);
  await docker(['pull', ref]);
  expect(await imageId(ref)).toBe(first.id);
  await agent.up(spec);
}, 180_000);

afterAll(async () => {
  await agent?.down({ remove: true }).catch(() => undefined);
  await removeByPrefix(prefix);
  const repository = ref.slice(0, ref.lastIndexOf(':'));
  await dockerQuiet(['rmi', '-f', ref, previousRef(ref), ...images]);
  const left = (await docker(['images', '-q', repository])).split('\n').filter(Boolean);
  if (left.length > 0) await dockerQuiet(['rmi', '-f', ...new Set(left)]);
  await registry?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('UpdateLoop', { timeout: 240_000 }, () => {
  test('off and up to date: no view, nothing pulled', async () => {
    const views: UpdateView[] = [];
    const running = await runningImage();
    await loop({ views, settings: () => ({ image: ref, updates: 'off' }) }).checkNow();
    const current = loop({ views });
    await current.checkNow();
    expect(current.lastCheck?.kind).toBe('current');
    expect(views.every((view) => view === null)).toBe(true);
    expect(await runningImage()).toBe(running);
  });

  test('a newer image is pulled while the policy says no, the tag untouched; switched once it says yes', async () => {
    const before = await runningImage();
    const next = await release(GOOD);
    const views: UpdateView[] = [];
    let allowed = false;
    const updates = loop({ views, mayDisrupt: () => allowed });
    const cycle = updates.checkNow();
    for (let i = 0; i < 200 && updates.view?.state !== 'waiting'; i++) await new Promise((r) => setTimeout(r, 100));
    expect(updates.view?.state).toBe('waiting');
    // Pulled by digest: the tag and the container are still the old image's.
    expect(await imageId(ref)).toBe(before);
    expect(await runningImage()).toBe(before);
    expect(await imageIdOrNull(next.id)).toBe(next.id);
    allowed = true;
    await cycle;
    expect(await runningImage()).toBe(next.id);
    expect(await imageId(ref)).toBe(next.id);
    expect(await imageIdOrNull(previousRef(ref))).toBeNull();
    expect(readState().switch).toBeNull();
    const states = views.map((view) => view?.state ?? null);
    expect(states).toEqual(expect.arrayContaining(['available', 'pulling', 'waiting', 'switching']));
    expect(states.at(-1)).toBeNull();
  });

  test('a broken image is rolled back to the previous one, notified once, and not tried again', async () => {
    const good = await runningImage();
    const broken = await release(BROKEN);
    const notes: string[] = [];
    const views: UpdateView[] = [];
    await loop({ notes, views }).checkNow();
    expect(views).toContainEqual(expect.objectContaining({ state: 'switching' }));
    expect(await runningImage()).toBe(good);
    expect(await imageId(ref)).toBe(good);
    expect(views.at(-1)).toMatchObject({ state: 'rolled-back' });
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/rolled back \(it did not start contributing within 8 s\)/);
    const state = readState();
    expect(state.switch).toBeNull();
    expect(state.rejected.map((entry) => entry.digest)).toEqual([broken.digest]);
    // The failed image is gone from the engine.
    expect(await imageIdOrNull(broken.id)).toBeNull();

    // Next check: the registry still serves it; no pull, no switch, no second notification.
    const containerId = await docker(['inspect', '--format', '{{.Id}}', agent.name]);
    const again = loop({ notes, views });
    await again.checkNow();
    expect(again.lastCheck?.kind).toBe('rejected');
    expect(again.view?.state).toBe('rolled-back');
    expect(await docker(['inspect', '--format', '{{.Id}}', agent.name])).toBe(containerId);
    expect(await imageIdOrNull(broken.id)).toBeNull();
    expect(notes).toHaveLength(1);
  });

  /** Runs the child controller until update-state says it is switching and the container runs `id`; kills it -9. */
  async function killMidSwitch(id: string): Promise<void> {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(import.meta.dirname, 'support/update-loop-child.ts'),
        JSON.stringify({ spec, stateDir }),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const deadline = Date.now() + 120_000;
    try {
      for (;;) {
        if (child.exitCode !== null) throw new Error(`the child controller exited ${child.exitCode}: ${output}`);
        const file = path.join(stateDir, UPDATE_STATE_FILE);
        const switching = existsSync(file) && readState().switch?.phase === 'switching';
        if (switching && (await runningImage().catch(() => '')) === id) break;
        if (Date.now() > deadline) throw new Error(`the child controller did not switch: ${output}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
    }
  }

  test('killed -9 mid-switch to a good image: the next start watches it and keeps it', async () => {
    const next = await release(GOOD);
    await killMidSwitch(next.id);
    expect(readState().switch).toMatchObject({ phase: 'switching', newImageId: next.id });
    const notes: string[] = [];
    await loop({ notes }).checkNow();
    expect(readState().switch).toBeNull();
    expect(await runningImage()).toBe(next.id);
    expect(await imageId(ref)).toBe(next.id);
    expect(notes).toEqual([]);
  });

  test('killed -9 mid-switch to a broken image: the next start rolls it back', async () => {
    const good = await runningImage();
    const broken = await release(BROKEN);
    await killMidSwitch(broken.id);
    const notes: string[] = [];
    const restarted = loop({ notes });
    await restarted.checkNow();
    expect(await runningImage()).toBe(good);
    expect(await imageId(ref)).toBe(good);
    expect(notes).toHaveLength(1);
    expect(readState().rejected.map((entry) => entry.digest)).toContain(broken.digest);
    expect(restarted.view?.state).toBe('rolled-back');
  });

  test('killed after update-state said switching but before the container was replaced: undone, then switched', async () => {
    const good = await runningImage();
    const next = await release(GOOD);
    await docker(['pull', `${ref.slice(0, ref.lastIndexOf(':'))}@${next.digest}`]);
    // The instant after the record and the tag move, before the old container stopped.
    await docker(['tag', good, previousRef(ref)]);
    await docker(['tag', next.id, ref]);
    const state = readState();
    writeFileSync(
      path.join(stateDir, UPDATE_STATE_FILE),
      JSON.stringify({
        ...state,
        switch: {
          phase: 'switching',
          image: ref,
          digest: next.digest,
          newImageId: next.id,
          previousImageId: good,
          startedAt: new Date().toISOString(),
          reason: null,
        },
      }),
    );
    let allowed = false;
    const restarted = loop({ mayDisrupt: () => allowed });
    const cycle = restarted.checkNow();
    for (let i = 0; i < 200 && restarted.view?.state !== 'waiting'; i++) await new Promise((r) => setTimeout(r, 100));
    // Undone: the tag names the running image again; the update waits for the policy like any other.
    expect(restarted.view?.state).toBe('waiting');
    expect(await imageId(ref)).toBe(good);
    expect(readState().switch).toBeNull();
    allowed = true;
    await cycle;
    expect(await runningImage()).toBe(next.id);
  });
});
