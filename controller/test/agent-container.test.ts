import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  DEFAULT_SETTINGS,
  GVISOR_SECCOMP_PROFILE,
  type Settings,
  SPILL_DIR,
  shmBytesFor,
  stopTimeoutSeconds,
} from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AppService } from '../src/app/app-service.js';
import { TokenVault } from '../src/app/token-vault.js';
import { cliAgentSpec } from '../src/cli/cli.js';
import { AgentContainer, type AgentSpec, DriftError } from '../src/container/agent-container.js';
import { spillVolumeName } from '../src/container/agent-container-spec.js';
import { resolveDockerEndpointFromProcess } from '../src/engine/docker-endpoint.js';
import { createDockerode } from '../src/engine/docker-engine.js';
import { docker, removeByPrefix, runPrefix } from './support/docker-cli.js';
import { freePort } from './support/free-port.js';
import { testKeychainCodec } from './support/test-keychain-codec.js';

/**
 * The controller against the machine's real engine and the real agent image. The agent points at names under
 * .invalid (reserved: they never resolve), so it retries quietly and sends no traffic anywhere.
 */
const MiB = 1024 ** 2;
const prefix = runPrefix('agent');
let dockerode: Dockerode;
let caPem: string;

interface Inspect {
  Id: string;
  Config: { Env: string[]; Labels: Record<string, string>; User: string; StopTimeout?: number; Image: string };
  HostConfig: {
    NanoCpus: number;
    Memory: number;
    MemorySwap: number;
    ShmSize: number;
    PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }>>;
    CapDrop: string[];
    SecurityOpt: string[];
    MaskedPaths: string[];
    ReadonlyPaths: string[];
    ReadonlyRootfs: boolean;
    RestartPolicy: { Name: string };
    Init: boolean;
    PidsLimit: number;
    Privileged: boolean;
    Tmpfs: Record<string, string>;
    NetworkMode: string;
  };
  Mounts: Array<{ Type: string; Name?: string; Destination: string }>;
  State: { Running: boolean; ExitCode: number; Status: string };
}

async function inspect(id: string): Promise<{ json: Inspect; text: string }> {
  const text = await docker(['inspect', id]);
  return { json: (JSON.parse(text) as Inspect[])[0] as Inspect, text };
}

/** Runs a throwaway container from a local image with the volume mounted at /v (read-only), returns stdout. */
function inVolume(volume: string, script: string): Promise<string> {
  return docker([
    'run',
    '--rm',
    '--network',
    'none',
    '-v',
    `${volume}:/v:ro`,
    'debian:bookworm-slim',
    'sh',
    '-c',
    script,
  ]);
}

function makeSpec(name: string, statusPort: number, token: string): AgentSpec {
  return {
    image: 'ray-agent:dev',
    clusterAddress: 'ray://rap-nowhere.invalid:10001',
    managerUrl: 'https://rap-nowhere.invalid',
    cpus: 1,
    memoryBytes: 1024 * MiB,
    statusPort,
    token,
    managerCaPem: caPem,
    drainDeadlineSeconds: 5,
    // The agent alone (direct mode): these tests are about the agent container; the pair has its own file.
    tunnel: false,
    name,
  };
}

const newToken = () => `rap-test-token-${randomBytes(16).toString('hex')}`;

beforeAll(async () => {
  dockerode = createDockerode(resolveDockerEndpointFromProcess());
  // A real CA certificate, so the agent can load MANAGER_CA_FILE.
  const dir = mkdtempSync(path.join(tmpdir(), 'rap-ca-'));
  try {
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      path.join(dir, 'ca.key'),
      '-out',
      path.join(dir, 'ca.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=rap-test-ca',
    ]);
    caPem = readFileSync(path.join(dir, 'ca.pem'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

afterAll(async () => {
  await removeByPrefix(prefix);
}, 60_000);

describe('AgentContainer lifecycle on the real engine', () => {
  const name = `${prefix}-main`;
  const volume = `${name}-state`;
  let statusPort: number;
  let spec: AgentSpec;
  let agent: AgentContainer;
  let firstId: string;

  beforeAll(async () => {
    statusPort = await freePort();
    spec = makeSpec(name, statusPort, newToken());
    agent = new AgentContainer(dockerode, { name });
  });

  test('up() creates the container with the chosen limits and the hardening', async () => {
    const result = await agent.up(spec);
    expect(result.outcome).toBe('created');
    expect(result.warnings).toEqual([]);
    firstId = result.id;
    const { json } = await inspect(result.id);
    const host = json.HostConfig;
    expect(host.NanoCpus).toBe(1e9);
    expect(host.Memory).toBe(1024 * MiB);
    expect(host.MemorySwap).toBe(1024 * MiB);
    // The contract's /dev/shm for 1 GiB (the agent plans its object store with the same rule).
    expect(host.ShmSize).toBe(shmBytesFor(1024 * MiB));
    expect(host.PortBindings).toEqual({ '8765/tcp': [{ HostIp: '127.0.0.1', HostPort: String(statusPort) }] });
    expect(host.CapDrop).toEqual(['ALL']);
    // The seccomp profile rootless gVisor needs (Docker's default plus user namespaces), not seccomp=unconfined.
    expect(host.SecurityOpt).toEqual(['no-new-privileges', `seccomp=${JSON.stringify(GVISOR_SECCOMP_PROFILE)}`]);
    expect(host.MaskedPaths).toEqual(['/sys/firmware']);
    expect(host.ReadonlyPaths).toEqual([]);
    expect(host.ReadonlyRootfs).toBe(true);
    expect(host.RestartPolicy.Name).toBe('unless-stopped');
    expect(host.Init).toBe(true);
    expect(host.PidsLimit).toBe(4096);
    expect(host.Privileged).toBe(false);
    expect(host.Tmpfs).toEqual({ '/tmp': 'rw,exec,suid,dev,size=512m' });
    expect(json.Config.User).toBe('1000:1000');
    expect(json.Config.StopTimeout).toBe(stopTimeoutSeconds(5));
    expect(json.Config.Labels).toMatchObject({
      'io.ray-agent.managed': 'true',
      'io.ray-agent.role': 'agent',
      'io.ray-agent.instance': name,
    });
    expect(json.Config.Labels['io.ray-agent.config-hash']).toMatch(/^[0-9a-f]{64}$/);
    expect(json.Config.Env).toEqual(
      expect.arrayContaining([
        'RAY_HEAD=ray://rap-nowhere.invalid:10001',
        'MANAGER_URL=https://rap-nowhere.invalid',
        'AGENT_TOKEN_FILE=/var/lib/ray-agent/secrets/enrollment-token',
        'MANAGER_CA_FILE=/var/lib/ray-agent/secrets/manager-ca.pem',
        'DRAIN_DEADLINE=5',
        'STATUS_PORT=8765',
      ]),
    );
    // State, and the spill directory Ray writes objects to when the object store is full (on disk, not in /tmp).
    expect(json.Mounts).toHaveLength(2);
    expect(json.Mounts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Type: 'volume', Name: volume, Destination: '/var/lib/ray-agent' }),
        expect.objectContaining({ Type: 'volume', Name: spillVolumeName(name), Destination: SPILL_DIR, RW: true }),
      ]),
    );
    expect(json.State.Running).toBe(true);
  });

  test('the token is nowhere in docker inspect, but in the volume: 0600, owned by 1000, under a 0700 secrets/', async () => {
    const { text } = await inspect(firstId);
    expect(text).not.toContain(spec.token);
    expect(await docker(['volume', 'inspect', volume])).not.toContain(spec.token);
    expect(await inVolume(volume, 'stat -c "%a %u %g" /v/secrets/enrollment-token')).toBe('600 1000 1000');
    expect(await inVolume(volume, 'stat -c "%a %u %g" /v/secrets/manager-ca.pem')).toBe('600 1000 1000');
    expect(await inVolume(volume, 'stat -c "%a %u %g" /v/secrets')).toBe('700 1000 1000');
    // The state directory itself stays the agent's (copied up from the image), so it can write its state; 0711
    // lets root without DAC_OVERRIDE in the tunnel container reach the one file meant for it (overlay.json).
    expect(await inVolume(volume, 'stat -c "%a %u" /v')).toBe('711 1000');
    expect(await inVolume(volume, 'cat /v/secrets/enrollment-token')).toBe(spec.token);
  });

  test('the spill volume is the agent’s to write (Ray spills there, not to the tmpfs /tmp), and starts empty', async () => {
    // Docker copies the image's directory (owner and mode) up into a new volume: the Dockerfile decides this.
    expect(await inVolume(spillVolumeName(name), 'stat -c "%a %u %g" /v')).toBe('700 1000 1000');
    expect(await docker(['exec', firstId, 'sh', '-c', `test -w ${SPILL_DIR} && echo writable`])).toBe('writable');
    expect(await inVolume(spillVolumeName(name), 'ls -A /v')).toBe('');
  });

  test('the agent answers on 127.0.0.1 at the chosen status port', async () => {
    const deadline = Date.now() + 45_000;
    let body: { state?: string; warnings?: string[]; limits?: { cpus: number; memoryBytes: number } } | undefined;
    let text = '';
    while (body === undefined) {
      try {
        const response = await fetch(`http://127.0.0.1:${statusPort}/status`);
        text = await response.text();
        if (response.ok) body = JSON.parse(text) as typeof body;
      } catch {
        // not listening yet
      }
      if (body === undefined) {
        if (Date.now() > deadline) throw new Error('the status endpoint never answered');
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
    // It read its token and CA files (a bad file is a configuration error, exit 2) and now retries the manager.
    expect(['starting', 'connecting']).toContain(body?.state);
    // The agent sees the limits Docker enforces, and /dev/shm holds its whole object store (no warning).
    expect(body?.limits).toMatchObject({ cpus: 1, memoryBytes: 1024 * MiB });
    expect(body?.warnings).toEqual([]);
    expect(text).not.toContain(spec.token);
  }, 60_000);

  test('status() reads the running container', async () => {
    const status = await agent.status();
    expect(status).toMatchObject({
      exists: true,
      id: firstId,
      running: true,
      restarting: false,
      image: 'ray-agent:dev',
      hostStatusPort: statusPort,
      exitCode: 0,
    });
    expect(status.configHash).toMatch(/^[0-9a-f]{64}$/);
    expect(status.startedAt).not.toBeNull();
  });

  test('drift() is empty for the container up() made', async () => {
    expect(await agent.drift(spec)).toEqual([]);
  });

  test('a second controller instance adopts it: same container ID', async () => {
    const other = new AgentContainer(createDockerode(resolveDockerEndpointFromProcess()), { name });
    const result = await other.up({ ...spec });
    // The token is in the volume already: nothing to deliver, no restart.
    expect(result).toEqual({ outcome: 'adopted', id: firstId, secretsDelivered: false, warnings: [] });
  });

  test('down() stops gracefully (exit code 0) and keeps the container; down() again is fine', async () => {
    const started = Date.now();
    expect(await agent.down()).toEqual({ existed: true, wasRunning: true, removed: false });
    const { json } = await inspect(firstId);
    expect(json.State.Running).toBe(false);
    // Exit 0: the agent drained and exited by itself; Docker's SIGKILL at StopTimeout would have given 137.
    expect(json.State.ExitCode).toBe(0);
    console.warn(`agent-container: down() took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // Already stopped: the engine answers 304, which counts as stopped.
    expect(await agent.down()).toEqual({ existed: true, wasRunning: false, removed: false });
    expect((await agent.status()).running).toBe(false);
  }, 40_000);

  test('up() after down() adopts the stopped container and starts it again', async () => {
    const result = await agent.up(spec);
    expect(result).toMatchObject({ outcome: 'adopted', id: firstId });
    expect((await inspect(firstId)).json.State.Running).toBe(true);
  });

  test('new CPU and memory limits apply live: same container, not restarted, the kernel holds them', async () => {
    const before = await inspect(firstId);
    const startedAt = (JSON.parse(before.text) as Array<{ State: { StartedAt: string } }>)[0]?.State.StartedAt;
    const changed = { ...spec, cpus: 0.75, memoryBytes: 1280 * MiB };
    const result = await agent.up(changed);
    expect(result).toMatchObject({ outcome: 'adopted', id: firstId });
    expect(result.liveLimits).toMatchObject({ nanoCpus: 7.5e8, memoryBytes: 1280 * MiB });
    const after = await inspect(firstId);
    expect(after.json.HostConfig).toMatchObject({ NanoCpus: 7.5e8, Memory: 1280 * MiB, MemorySwap: 1280 * MiB });
    expect(after.json.State.Running).toBe(true);
    expect((JSON.parse(after.text) as Array<{ State: { StartedAt: string } }>)[0]?.State.StartedAt).toBe(startedAt);
    // Whatever the image's agent could tell (an image without the control bundle: a warning, never a restart).
    if (result.liveLimits?.resizedLive === false) expect(result.warnings.join(' ')).toMatch(/limits hold/);
    // Again: nothing to change.
    expect((await agent.up(changed)).liveLimits).toBeUndefined();
    // A throttle is not drift.
    const throttle = await agent.applyLimits({ cpus: 0.75, memoryBytes: 1280 * MiB, throttleCpus: 0.1 });
    expect(throttle?.nanoCpus).toBe(1e8);
    expect(await agent.drift(changed)).toEqual([]);
    spec = changed;
  }, 60_000);

  test('a change (drain deadline and token) replaces it: old container gone, state volume kept with the new token', async () => {
    // The agent saved its install ID on the state volume (it registers with it); a new container keeps it.
    const installId = await inVolume(volume, 'cat /v/install-id');
    expect(installId).toMatch(/\S{8,}/);
    const changed = { ...spec, drainDeadlineSeconds: 6, token: newToken() };
    const result = await agent.up(changed);
    expect(result.outcome).toBe('replaced');
    expect(result.id).not.toBe(firstId);
    await expect(docker(['inspect', firstId])).rejects.toThrow('No such object');
    const { json, text } = await inspect(result.id);
    // Created afresh at the offer: a throttle does not outlive the container.
    expect(json.HostConfig.NanoCpus).toBe(7.5e8);
    expect(text).not.toContain(changed.token);
    expect(await inVolume(volume, 'cat /v/secrets/enrollment-token')).toBe(changed.token);
    expect(await inVolume(volume, 'cat /v/install-id')).toBe(installId);
    spec = changed;
    firstId = result.id;
  }, 90_000);

  test("logs() reads the agent's own lines", async () => {
    const lines: string[] = [];
    const deadline = Date.now() + 30_000;
    while (lines.length === 0 && Date.now() < deadline) {
      const read = await agent.logs({ tail: 50 }, (line) => lines.push(line));
      await read.ended;
      if (lines.length === 0) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(lines.length).toBeGreaterThan(0);
    // The agent logs JSON lines; none of them carries the token.
    expect(lines.join('\n')).not.toContain(spec.token);
  }, 40_000);

  test('down({remove: true}) removes the container; the state volume stays unless removeState', async () => {
    expect(await agent.down({ remove: true })).toMatchObject({ existed: true, removed: true });
    expect((await agent.status()).exists).toBe(false);
    expect(await docker(['volume', 'ls', '-q', '--filter', `name=^${volume}$`])).toBe(volume);
    expect(await agent.down({ removeState: true })).toEqual({ existed: false, wasRunning: false, removed: false });
    expect(await docker(['volume', 'ls', '-q', '--filter', `name=^${volume}$`])).toBe('');
  }, 40_000);
});

describe('one container for the CLI and the tray app (the same builder, the token delivered, not hashed)', () => {
  const name = `${prefix}-shared`;
  const volume = `${name}-state`;
  const settingsDir = mkdtempSync(path.join(tmpdir(), 'rap-shared-'));
  const firstToken = newToken();
  let settings: Settings;
  let service: AppService;
  let vault: TokenVault;
  let cliId: string;

  const startedAt = async () => (await inspect(name)).json.State as unknown as { StartedAt: string };
  const tokenInVolume = () => inVolume(volume, 'cat /v/secrets/enrollment-token 2>/dev/null || echo "(none)"');

  beforeAll(async () => {
    settings = {
      ...DEFAULT_SETTINGS,
      clusterAddress: 'ray://rap-nowhere.invalid:10001',
      managerUrl: 'https://rap-nowhere.invalid',
      cpus: 1,
      memoryMiB: 1024,
      statusPort: await freePort(),
      contribute: true,
      // The agent alone: what is shared here (one container, the token delivered) is the same in the pair.
      network: 'direct',
    };
    writeFileSync(path.join(settingsDir, 'config.json'), JSON.stringify(settings));
    vault = new TokenVault(settingsDir, testKeychainCodec());
    expect(vault.set(firstToken)).toEqual({ ok: true });
    service = new AppService({ settingsDir, vault, containerName: name });
  });

  afterAll(() => {
    rmSync(settingsDir, { recursive: true, force: true });
  });

  test('`ray-agent up` without a token creates the container with no token file at all (never an empty one)', async () => {
    const result = await new AgentContainer(dockerode, { name }).up(cliAgentSpec(settings, name));
    expect(result).toMatchObject({ outcome: 'created', secretsDelivered: false });
    cliId = result.id;
    expect(await tokenInVolume()).toBe('(none)');
    const { json } = await inspect(cliId);
    // The file is where a token will be delivered; the agent reads a missing file as "no token".
    expect(json.Config.Env).toContain('AGENT_TOKEN_FILE=/var/lib/ray-agent/secrets/enrollment-token');
  });

  test("then the app starts contributing: it adopts the CLI's container (same ID) and delivers its token into it", async () => {
    expect(await service['contribute:set'](true)).toEqual({ ok: true });
    const { json, text } = await inspect(name);
    expect(json.Id).toBe(cliId);
    expect(await tokenInVolume()).toBe(firstToken);
    expect(text).not.toContain(firstToken);
    // Running: it read the token at its (re)start and now tries the manager, not exiting.
    await expect.poll(async () => (await inspect(name)).json.State.Running, { timeout: 60_000 }).toBe(true);
  }, 120_000);

  test("`ray-agent up` again adopts the app's container: nothing written, not restarted", async () => {
    const before = (await startedAt()).StartedAt;
    const result = await new AgentContainer(dockerode, { name }).up(cliAgentSpec(settings, name));
    expect(result).toEqual({ outcome: 'adopted', id: cliId, secretsDelivered: false, warnings: [] });
    expect((await startedAt()).StartedAt).toBe(before);
  }, 60_000);

  test('a token the agent removed after registering is not written back when the app starts again', async () => {
    await docker([
      'run',
      '--rm',
      '--network',
      'none',
      '-v',
      `${volume}:/v`,
      'debian:bookworm-slim',
      'rm',
      '/v/secrets/enrollment-token',
    ]);
    const before = (await startedAt()).StartedAt;
    // A new app process over the same settings and vault (the app was restarted).
    const again = new AppService({ settingsDir, vault, containerName: name });
    expect(await again['contribute:set'](true)).toEqual({ ok: true });
    expect(await tokenInVolume()).toBe('(none)');
    expect((await startedAt()).StartedAt).toBe(before);
    expect((await inspect(name)).json.Id).toBe(cliId);
  }, 60_000);

  test('a new token pasted while contributing goes into the same container, which restarts to read it', async () => {
    const before = (await startedAt()).StartedAt;
    const second = newToken();
    expect(await service['token:set'](second)).toEqual({ ok: true });
    await expect.poll(tokenInVolume, { timeout: 90_000, interval: 500 }).toBe(second);
    await expect.poll(async () => (await startedAt()).StartedAt, { timeout: 90_000, interval: 500 }).not.toBe(before);
    const { json, text } = await inspect(name);
    expect(json.Id).toBe(cliId);
    expect(text).not.toContain(second);
  }, 120_000);

  test('a CA the existing container cannot read (no MANAGER_CA_FILE) needs a new container, created with it', async () => {
    const caFile = path.join(settingsDir, 'ca.pem');
    writeFileSync(caFile, caPem);
    const withCa = new AppService({ settingsDir, vault, containerName: name, managerCaFile: caFile });
    expect(await withCa['contribute:set'](true)).toEqual({ ok: true });
    const { json } = await inspect(name);
    expect(json.Id).not.toBe(cliId);
    expect(json.Config.Env).toContain('MANAGER_CA_FILE=/var/lib/ray-agent/secrets/manager-ca.pem');
    // (The docker helper trims its output.)
    expect(await inVolume(volume, 'cat /v/secrets/manager-ca.pem')).toBe(caPem.trim());
    // The CLI, which has no CA to give, adopts it as it is.
    expect((await new AgentContainer(dockerode, { name }).up(cliAgentSpec(settings, name))).outcome).toBe('adopted');
  }, 120_000);
});

describe('the app shows an OOM-killed agent as such (the real engine, a real OOM kill)', () => {
  test('phase error, "ran out of memory", with the container\'s limit and what to change', async () => {
    const name = `${prefix}-oom`;
    const settingsDir = mkdtempSync(path.join(tmpdir(), 'rap-oom-'));
    // A configured cluster (names under .invalid): with none, contributing would start the real playground.
    writeFileSync(
      path.join(settingsDir, 'config.json'),
      JSON.stringify({
        ...DEFAULT_SETTINGS,
        clusterAddress: 'ray://rap-nowhere.invalid:10001',
        managerUrl: 'https://rap-nowhere.invalid',
        contribute: true,
        statusPort: await freePort(),
      }),
    );
    // Under our labels, as the app would find its agent; the process asks for far more than the limit. Made by
    // hand (Docker's default capabilities), so the app will not replace it without a yes and the test sees it.
    await docker([
      'run',
      '-d',
      '--name',
      name,
      '--network',
      'none',
      '--memory=96m',
      '--memory-swap=96m',
      '--label',
      'io.ray-agent.managed=true',
      '--label',
      'io.ray-agent.role=agent',
      '--label',
      `io.ray-agent.instance=${name}`,
      '--entrypoint',
      'python3',
      'ray-agent:dev',
      '-c',
      'a = bytearray(1024 * 1024 * 1024)',
    ]);
    await expect.poll(async () => (await inspect(name)).json.State.Running, { timeout: 60_000 }).toBe(false);
    const notices: string[] = [];
    const service = new AppService({
      settingsDir,
      vault: new TokenVault(settingsDir, testKeychainCodec()),
      containerName: name,
      pollIntervalMs: 500,
      notify: (text) => notices.push(text),
    });
    try {
      service.start();
      await expect
        .poll(async () => (await service['status:get']()).headline, { timeout: 60_000, interval: 500 })
        .toBe('The agent ran out of memory');
      const view = await service['status:get']();
      expect(view.phase).toBe('error');
      expect(view.detail).toBe(
        'The agent ran out of memory (limit 96 MiB): give it more memory in Settings, or run fewer tasks at once.',
      );
      // The app tried to start contributing and left the hand-made container alone.
      expect(notices.join('\n')).toContain('changed outside this app');
      expect((await inspect(name)).json.State.Running).toBe(false);
    } finally {
      await service.shutdown().catch(() => undefined);
      rmSync(settingsDir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('drift and refusals', () => {
  test('a hand-made container under our labels with the Docker socket, --privileged, an open port and a token in its environment is drift; up() refuses, then replaces on confirmation', async () => {
    const name = `${prefix}-drift`;
    const port = await freePort();
    const token = newToken();
    // Created, not started: --privileged cannot start in this sandbox ("unable to apply caps"), and drift reads
    // only the container's configuration.
    await docker([
      'create',
      '--name',
      name,
      '--label',
      'io.ray-agent.managed=true',
      '--label',
      'io.ray-agent.role=agent',
      '--label',
      `io.ray-agent.instance=${name}`,
      '-v',
      '/var/run/docker.sock:/var/run/docker.sock',
      '--privileged',
      '-p',
      `0.0.0.0:${port}:8765`,
      '-e',
      `AGENT_TOKEN=${token}`,
      '--network',
      'none',
      '--stop-timeout',
      '1',
      'debian:bookworm-slim',
      'sleep',
      'infinity',
    ]);
    const agent = new AgentContainer(dockerode, { name });
    const spec = makeSpec(name, await freePort(), token);
    const drift = await agent.drift(spec);
    const kinds = drift.map((item) => item.kind);
    expect(kinds).toEqual(
      expect.arrayContaining(['image', 'docker-socket', 'privileged', 'port', 'secret-env', 'capabilities', 'user']),
    );
    expect(drift.find((item) => item.kind === 'docker-socket')?.detail).toContain('/var/run/docker.sock');
    expect(drift.find((item) => item.kind === 'port')?.detail).toContain('0.0.0.0');
    // A drift detail never repeats the secret itself.
    expect(JSON.stringify(drift)).not.toContain(token);

    const refused = agent.up(spec);
    await expect(refused).rejects.toBeInstanceOf(DriftError);
    await expect(refused).rejects.toThrow('changed outside this app');
    // Still there, untouched.
    expect((await inspect(name)).json.Config.Image).toBe('debian:bookworm-slim');

    const result = await agent.up(spec, () => {}, { confirmDrift: true });
    expect(result.outcome).toBe('replaced');
    expect(await agent.drift(spec)).toEqual([]);
    await agent.down({ remove: true, timeoutSeconds: 10 });
  }, 90_000);

  test('a container with our name that this app did not make is left alone, with a clear error', async () => {
    const name = `${prefix}-foreign`;
    await docker(['create', '--name', name, 'debian:bookworm-slim', 'true']);
    const agent = new AgentContainer(dockerode, { name });
    await expect(agent.up(makeSpec(name, await freePort(), newToken()))).rejects.toThrow(
      `a container named "${name}" exists that this app did not create`,
    );
    expect((await inspect(name)).json.Config.Image).toBe('debian:bookworm-slim');
  });

  test('a status port another program holds fails clearly and leaves no container behind', async () => {
    const name = `${prefix}-busy`;
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const agent = new AgentContainer(dockerode, { name });
      await expect(agent.up(makeSpec(name, port, newToken()))).rejects.toThrow(
        `the status port ${port} on 127.0.0.1 is taken by another program`,
      );
      expect((await agent.status()).exists).toBe(false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('up() refuses a spec for another name than the controller manages', async () => {
    const agent = new AgentContainer(dockerode, { name: `${prefix}-one` });
    await expect(agent.up(makeSpec(`${prefix}-two`, 8765, newToken()))).rejects.toThrow('use another AgentContainer');
  });
});

describe('logs() demultiplexing', () => {
  test('stdout and stderr lines arrive separately, following until the container exits', async () => {
    const name = `${prefix}-logs`;
    await docker([
      'run',
      '-d',
      '--name',
      name,
      '--network',
      'none',
      '--label',
      'io.ray-agent.managed=true',
      '--label',
      'io.ray-agent.role=agent',
      '--label',
      `io.ray-agent.instance=${name}`,
      'debian:bookworm-slim',
      'sh',
      '-c',
      'echo out; echo err >&2; sleep 1; echo "late line"; printf "no newline"',
    ]);
    const agent = new AgentContainer(dockerode, { name });
    const lines: Array<[string, string]> = [];
    const follow = await agent.logs({ follow: true, tail: 'all' }, (line, source) => lines.push([source, line]));
    await follow.ended;
    // Docker copies stdout and stderr separately, so only the order within each stream is certain.
    const stdout = lines.filter(([source]) => source === 'stdout').map(([, line]) => line);
    const stderr = lines.filter(([source]) => source === 'stderr').map(([, line]) => line);
    expect(stderr).toEqual(['err']);
    expect(stdout.slice(0, 2)).toEqual(['out', 'late line']);
    // The engine (20.10) may end a follow before it sends a last line without a newline; a plain read has it.
    expect(stdout.slice(2)).toEqual(stdout.length === 3 ? ['no newline'] : []);

    const tail: Array<[string, string]> = [];
    const read = await agent.logs({ tail: 2 }, (line, source) => tail.push([source, line]));
    await read.ended;
    expect(tail).toEqual([
      ['stdout', 'late line'],
      ['stdout', 'no newline'],
    ]);
  }, 30_000);

  test('stop() ends a follow early', async () => {
    const name = `${prefix}-logs2`;
    await docker([
      'run',
      '-d',
      '--name',
      name,
      '--network',
      'none',
      '--init',
      '--label',
      'io.ray-agent.managed=true',
      '--label',
      'io.ray-agent.role=agent',
      '--label',
      `io.ray-agent.instance=${name}`,
      'debian:bookworm-slim',
      'sh',
      '-c',
      'echo first; sleep 600',
    ]);
    const agent = new AgentContainer(dockerode, { name });
    const lines: string[] = [];
    const follow = await agent.logs({ follow: true }, (line) => lines.push(line));
    const deadline = Date.now() + 10_000;
    while (lines.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    follow.stop();
    await follow.ended;
    expect(lines).toEqual(['first']);
  }, 30_000);
});

describe('limits()', () => {
  test("reports what Docker can give beside the host's own figures", async () => {
    const limits = await new AgentContainer(dockerode).limits();
    expect(limits.docker?.cpus).toBeGreaterThan(0);
    expect(limits.docker?.memoryBytes).toBeGreaterThan(512 * MiB);
    expect(limits.host.cpus).toBeGreaterThan(0);
    expect(limits.host.memoryBytes).toBeGreaterThan(512 * MiB);
    expect(limits.host.model.length).toBeGreaterThan(0);
  });
});
