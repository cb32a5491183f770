import { AGENT_CONTROL_BUNDLE, LIVE_LIMITS_FILE } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AgentControlError, agentControl } from '../src/container/agent-control.js';
import { applyLiveLimits, readLiveLimits } from '../src/container/live-limits.js';
import { resolveDockerEndpointFromProcess } from '../src/engine/docker-endpoint.js';
import { createDockerode } from '../src/engine/docker-engine.js';
import { tarFiles } from '../src/engine/tar.js';
import { docker, removeByPrefix, runPrefix } from './support/docker-cli.js';

/**
 * The docker exec control client and `docker update` against the machine's real engine, in containers of the real
 * agent image that run no agent (`sleep`/`node -e`). The agent's side of the exec is a STAND-IN control.mjs
 * written into the container (the real bundle is the agent image's, tested there and in e2e/policy-throttle): it
 * answers as the contract says, so what is tested here is the exec, the demultiplexing and the parsing.
 */
const MiB = 1024 ** 2;
const IMAGE = 'ray-agent:dev';
const prefix = runPrefix('ra-policy-live');
let dockerode: Dockerode;

async function scratch(name: string, flags: string[], command: string[]): Promise<string> {
  return docker([
    'run',
    '-d',
    '--name',
    `${prefix}-${name}`,
    '--network',
    'none',
    '--user',
    '0:0',
    '--entrypoint',
    command[0] as string,
    ...flags,
    IMAGE,
    ...command.slice(1),
  ]);
}

/** Puts a stand-in for the agent's control bundle at AGENT_CONTROL_BUNDLE (or removes it: an older image). */
async function standIn(container: string, source: string | null): Promise<void> {
  await docker(['exec', container, 'rm', '-f', AGENT_CONTROL_BUNDLE]);
  if (source === null) return;
  const dir = AGENT_CONTROL_BUNDLE.slice(0, AGENT_CONTROL_BUNDLE.lastIndexOf('/'));
  const file = AGENT_CONTROL_BUNDLE.slice(dir.length + 1);
  await dockerode
    .getContainer(container)
    .putArchive(tarFiles([{ name: file, content: source, mode: 0o644, uid: 0, gid: 0 }]), { path: dir });
}

/** Echoes the request back as a reply: on stderr noise, on stdout one line. */
const ECHO = `
const request = JSON.parse(process.argv[2]);
process.stderr.write('stand-in: some log line\\n');
process.stdout.write('a line before the reply\\n');
if (request.command === 'limits')
  console.log(JSON.stringify({ ok: true, message: 'resized to ' + request.cpus, rayCpus: Math.floor(request.cpus), resizedLive: true }));
else console.log(JSON.stringify({ ok: false, message: 'drain refused: ' + request.reason }));
process.exit(0);
`;

beforeAll(() => {
  dockerode = createDockerode(resolveDockerEndpointFromProcess());
});

afterAll(async () => {
  await removeByPrefix(prefix);
}, 60_000);

describe('agentControl over docker exec', () => {
  let id: string;
  beforeAll(async () => {
    id = await scratch('exec', [], ['sleep', '600']);
  });

  test("returns the agent's one reply line, parsed, past stderr and other stdout lines", async () => {
    await standIn(id, ECHO);
    const request = { command: 'limits', cpus: 2, memoryBytes: 1024 * MiB, throttleCpus: null } as const;
    expect(await agentControl(dockerode, id, request)).toEqual({
      ok: true,
      message: 'resized to 2',
      rayCpus: 2,
      resizedLive: true,
    });
    // ok: false is an answer, not a failure: the caller decides.
    const drain = await agentControl(dockerode, id, { command: 'drain', deadlineSeconds: 5, reason: 'pause' });
    expect(drain).toEqual({ ok: false, message: 'drain refused: pause' });
  });

  test('an image without the bundle is said so (an older image)', async () => {
    await standIn(id, null);
    const error = await agentControl(dockerode, id, { command: 'drain', deadlineSeconds: 5, reason: 'pause' }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(AgentControlError);
    expect((error as AgentControlError).failure).toBe('no-bundle');
    expect((error as Error).message).toMatch(/has no \/opt\/ray-agent\/control\.mjs \(an image older/);
  });

  test('a reply that is not JSON, or not a reply, is a bad reply naming what came', async () => {
    await standIn(id, "console.log('hello there'); process.exit(1);");
    await expect(
      agentControl(dockerode, id, { command: 'drain', deadlineSeconds: 5, reason: 'pause' }),
    ).rejects.toThrow(/did not answer with a JSON line \(exit code 1\): hello there/);
    await standIn(id, 'console.log(JSON.stringify({ yes: 1 }));');
    await expect(
      agentControl(dockerode, id, { command: 'drain', deadlineSeconds: 5, reason: 'pause' }),
    ).rejects.toMatchObject({ failure: 'bad-reply' });
  });

  test('an agent that does not answer in time is a timeout', async () => {
    await standIn(id, 'setTimeout(() => {}, 60000);');
    const started = Date.now();
    await expect(
      agentControl(dockerode, id, { command: 'drain', deadlineSeconds: 5, reason: 'pause' }, { timeoutMs: 1500 }),
    ).rejects.toMatchObject({ failure: 'timeout', message: expect.stringMatching(/did not answer within 2 s/) });
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  test('a bad request is refused before any exec, naming the field', async () => {
    await expect(
      agentControl(dockerode, id, { command: 'limits', cpus: -1, memoryBytes: 1, throttleCpus: null }),
    ).rejects.toThrow(/agent control request: cpus: .*e\.g\./);
  });

  test('a stopped or missing container is not-running', async () => {
    const stopped = await scratch('exec-stopped', [], ['sleep', '600']);
    await docker(['stop', '-t', '0', stopped]);
    await expect(
      agentControl(dockerode, stopped, { command: 'drain', deadlineSeconds: 5, reason: 'pause' }),
    ).rejects.toMatchObject({ failure: 'not-running', message: expect.stringMatching(/not running/) });
    await expect(
      agentControl(dockerode, `${prefix}-none`, { command: 'drain', deadlineSeconds: 5, reason: 'pause' }),
    ).rejects.toMatchObject({ failure: 'not-running', message: expect.stringMatching(/no such container/) });
  });
});

describe('applyLiveLimits with docker update', () => {
  const limitsOf = async (id: string) => {
    const [info] = JSON.parse(await docker(['inspect', id])) as Array<{
      HostConfig: { NanoCpus: number; Memory: number; MemorySwap: number };
      State: { StartedAt: string; Running: boolean };
    }>;
    return info as NonNullable<typeof info>;
  };

  test('a throttle: the kernel limit drops at once, without a restart; the agent is told', async () => {
    const id = await scratch('throttle', ['--cpus=2', '--memory=512m', '--memory-swap=512m'], ['sleep', '600']);
    await standIn(id, ECHO);
    const before = await limitsOf(id);
    const outcome = await applyLiveLimits(dockerode, id, { cpus: 2, memoryBytes: 768 * MiB, throttleCpus: 0.2 });
    expect(outcome).toMatchObject({
      nanoCpus: 2e8,
      memoryBytes: 768 * MiB,
      rayCpus: 2,
      resizedLive: true,
      warning: null,
    });
    const after = await limitsOf(id);
    expect(after.HostConfig).toMatchObject({ NanoCpus: 2e8, Memory: 768 * MiB, MemorySwap: 768 * MiB });
    expect(after.State.StartedAt).toBe(before.State.StartedAt);
    expect(after.State.Running).toBe(true);
  });

  test('an older image: the kernel limit still holds, and the outcome says Ray did not follow', async () => {
    const id = await scratch('old', ['--cpus=1', '--memory=512m'], ['sleep', '600']);
    await standIn(id, null);
    const outcome = await applyLiveLimits(dockerode, id, { cpus: 1, memoryBytes: 512 * MiB, throttleCpus: 0.1 });
    expect(outcome).toMatchObject({ nanoCpus: 1e8, reply: null, resizedLive: false });
    expect(outcome.warning).toMatch(/limits hold, but this agent image is older .* until the container is replaced/);
    expect((await limitsOf(id)).HostConfig.NanoCpus).toBe(1e8);
  });

  test('memory below what the container uses is refused plainly, and nothing changes', async () => {
    const id = await scratch(
      'memory',
      ['--cpus=1', '--memory=768m', '--memory-swap=768m'],
      ['node', '-e', 'const b = Buffer.alloc(300 * 1024 * 1024, 1); setInterval(() => b[0]++, 1000);'],
    );
    // The allocation takes a moment on a loaded machine.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const stats = (await dockerode.getContainer(id).stats({ stream: false })) as { memory_stats: { usage?: number } };
      if ((stats.memory_stats.usage ?? 0) > 300 * MiB) break;
      if (Date.now() > deadline) throw new Error('the 300 MiB were never allocated');
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await expect(
      applyLiveLimits(dockerode, id, { cpus: 1, memoryBytes: 200 * MiB, throttleCpus: null }),
    ).rejects.toThrow(/cannot set the memory limit of .* to 200 MiB: it uses \d+ MiB now/);
    const after = await limitsOf(id);
    expect(after.HostConfig.Memory).toBe(768 * MiB);
    expect(after.State.Running).toBe(true);
  });

  test('a stopped container: the kernel limits change, it stays stopped, and the record it reads at start says so', async () => {
    const volume = `${prefix}-state`;
    const id = await scratch(
      'stopped',
      ['--cpus=1', '--memory=512m', '-v', `${volume}:/var/lib/ray-agent`],
      ['sleep', '600'],
    );
    await docker(['stop', '-t', '0', id]);
    const outcome = await applyLiveLimits(dockerode, id, { cpus: 1.5, memoryBytes: 640 * MiB, throttleCpus: 0.15 });
    expect(outcome).toMatchObject({ reply: null, resizedLive: true, warning: null });
    const after = await limitsOf(id);
    expect(after.State.Running).toBe(false);
    expect(after.HostConfig.NanoCpus).toBe(1.5e8);
    const record = await readLiveLimits(dockerode.getContainer(id));
    expect(record).toMatchObject({ cpus: 1.5, memoryBytes: 640 * MiB, throttleCpus: 0.15 });
    // Owned by the agent's uid, private.
    const stat = await docker([
      'run',
      '--rm',
      '--network',
      'none',
      '-v',
      `${volume}:/v:ro`,
      '--entrypoint',
      'stat',
      IMAGE,
      '-c',
      '%u %a',
      `/v/${LIVE_LIMITS_FILE.split('/').at(-1)}`,
    ]);
    expect(stat).toBe('1000 600');
  });

  test('a missing container is said so', async () => {
    await expect(
      applyLiveLimits(dockerode, `${prefix}-none`, { cpus: 1, memoryBytes: 512 * MiB, throttleCpus: null }),
    ).rejects.toThrow(/no such container/);
  });
});
