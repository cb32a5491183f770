import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  agentStopSeconds,
  DEFAULT_SETTINGS,
  rayMemoryPlan,
  type Settings,
  SPILL_DIR,
  shmBytesFor,
  stopTimeoutSeconds,
  tmpfsBytesFor,
} from '@ray-agent/protocol';
import { describe, expect, test } from 'vitest';
import { appAgentSpec } from '../src/app/app-service.js';
import { cliAgentSpec } from '../src/cli/cli.js';
import {
  type AgentSpec,
  configHash,
  createOptions,
  spillVolumeName,
  validateSpec,
} from '../src/container/agent-container-spec.js';
import { agentSpecFor } from '../src/container/agent-spec.js';
import {
  firstFileOf,
  type SecretDigests,
  secretDigests,
  secretsArchive,
  secretsToWrite,
} from '../src/container/state-volume-secrets.js';

const MiB = 1024 ** 2;
const GiB = 1024 * MiB;
const TOKEN = 'rap-unit-token-0123456789abcdef';
const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

const spec: AgentSpec = {
  image: 'ray-agent:dev',
  clusterAddress: 'ray://head.lan:10001',
  managerUrl: 'https://manager.lan:8443',
  cpus: 2,
  memoryBytes: 4 * GiB,
  statusPort: 8765,
  token: TOKEN,
};

const settings: Settings = {
  ...DEFAULT_SETTINGS,
  clusterAddress: 'ray://head.lan:10001',
  managerUrl: 'https://manager.lan:8443',
  cpus: 3,
  memoryMiB: 6144,
  statusPort: 18765,
};

describe('container sizes come from the contract the agent plans with', () => {
  test("the /dev/shm and /tmp the controller gives are the contract's, and the agent's plan gets its full store", () => {
    for (const memory of [512 * MiB, 1 * GiB, 3 * GiB + 7 * MiB, 4 * GiB, 16 * GiB]) {
      const host = createOptions({ ...spec, memoryBytes: memory }).HostConfig;
      expect(host?.ShmSize).toBe(shmBytesFor(memory));
      expect(host?.Tmpfs?.['/tmp']).toBe(`rw,exec,suid,dev,size=${tmpfsBytesFor(memory) / MiB}m`);
      const plan = rayMemoryPlan(memory, host?.ShmSize);
      expect(plan.cut).toBe('full');
      expect(plan.objectStoreBytes + plan.reserveBytes + plan.rayMemoryBytes).toBeLessThanOrEqual(memory);
    }
  });

  test("the stop timeout covers the agent's slowest stop after its drain deadline", () => {
    for (const drain of [0, 5, 25, 300]) {
      const options = createOptions({ ...spec, drainDeadlineSeconds: drain });
      expect(options.StopTimeout).toBe(stopTimeoutSeconds(drain));
      expect(options.StopTimeout).toBeGreaterThan(agentStopSeconds(drain));
    }
    expect(createOptions(spec).StopTimeout).toBe(stopTimeoutSeconds(25));
  });
});

describe('Ray spills to a disk-backed volume of its own', () => {
  test('a named volume per agent at SPILL_DIR, not under a tmpfs of the memory cgroup', () => {
    for (const name of [undefined, 'ray-agent-2']) {
      const host = createOptions({ ...spec, name }).HostConfig;
      const spill = host?.Mounts?.find((mount) => mount.Target === SPILL_DIR);
      expect(spill).toEqual({ Type: 'volume', Source: spillVolumeName(name ?? 'ray-agent'), Target: SPILL_DIR });
      expect(spill?.ReadOnly).toBeUndefined();
      // A tmpfs at or above the spill directory would put spilled bytes back into the memory limit.
      for (const tmpfs of Object.keys(host?.Tmpfs ?? {}))
        expect(SPILL_DIR === tmpfs || SPILL_DIR.startsWith(`${tmpfs}/`), tmpfs).toBe(false);
    }
    expect(spillVolumeName('ray-agent')).toBe('ray-agent-spill');
  });
});

describe("configHash: the container's identity", () => {
  test('is the same with or without the token and the CA, and with another token or CA', () => {
    const base = configHash(spec);
    expect(configHash({ ...spec, token: undefined })).toBe(base);
    expect(configHash({ ...spec, token: `${TOKEN}x` })).toBe(base);
    expect(configHash({ ...spec, managerCaPem: CA })).toBe(base);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
  });

  test('changes with everything that shapes the container', () => {
    const base = configHash(spec);
    for (const change of [
      { image: 'ray-agent:next' },
      { clusterAddress: 'head.lan:6379' },
      { managerUrl: 'https://other.lan' },
      { statusPort: 8766 },
      { drainDeadlineSeconds: 60 },
      { network: 'net' },
      { extraEnv: { LOG_LEVEL: 'debug' } },
    ] satisfies Partial<AgentSpec>[])
      expect(configHash({ ...spec, ...change }), JSON.stringify(change)).not.toBe(base);
  });

  test('is the same for other CPU and memory limits: they are changed live, not by a new container', () => {
    const base = configHash(spec);
    expect(configHash({ ...spec, cpus: 3 })).toBe(base);
    expect(configHash({ ...spec, memoryBytes: 8 * GiB })).toBe(base);
  });

  test('does not depend on the order of extraEnv', () => {
    expect(configHash({ ...spec, extraEnv: { A: '1', B: '2' } })).toBe(
      configHash({ ...spec, extraEnv: { B: '2', A: '1' } }),
    );
  });
});

describe('one builder for the app, the CLI and the playground', () => {
  test('the CLI without a token and the app with one build the same container', () => {
    const cli = cliAgentSpec(settings, 'ray-agent');
    const app = appAgentSpec(settings, 'ray-agent', {}, TOKEN);
    expect(cli.token).toBeUndefined();
    expect(app.token).toBe(TOKEN);
    expect(configHash(cli)).toBe(configHash(app));
    expect(createOptions(cli)).toEqual(createOptions(app));
    // With --token-file the CLI's spec is the app's, token and all.
    expect(cliAgentSpec(settings, 'ray-agent', TOKEN)).toEqual(app);
  });

  test('settings become the spec: limits in bytes, the status port, the cluster', () => {
    expect(agentSpecFor({ settings, name: 'ray-agent' })).toEqual({
      image: settings.image,
      clusterAddress: 'ray://head.lan:10001',
      managerUrl: 'https://manager.lan:8443',
      cpus: 3,
      memoryBytes: 6144 * MiB,
      statusPort: 18765,
      tunnel: true,
      name: 'ray-agent',
      acceptWork: 'any',
      sandboxNetwork: false,
    });
    expect(agentSpecFor({ settings: { ...settings, network: 'direct' }, name: 'ray-agent' }).tunnel).toBe(false);
    // The sandbox rules reach the agent's environment, where its config and the image's runsc wrapper read them.
    const strict = createOptions(
      agentSpecFor({ settings: { ...settings, acceptWork: 'sandboxed', sandboxNetwork: true }, name: 'ray-agent' }),
    );
    expect(strict.Env).toEqual(expect.arrayContaining(['ACCEPT_WORK=sandboxed', 'SANDBOX_NETWORK=on']));
    expect(createOptions(agentSpecFor({ settings, name: 'ray-agent' })).Env).toEqual(
      expect.arrayContaining(['ACCEPT_WORK=any', 'SANDBOX_NETWORK=off']),
    );
  });

  test('the playground keeps the settings and puts its own cluster, network and secrets on top', () => {
    const playground = agentSpecFor({
      settings: { ...settings, clusterAddress: '', managerUrl: '' },
      name: 'ray-agent',
      cluster: { clusterAddress: 'ray://pg-head:10001', managerUrl: 'https://pg-manager:8443' },
      secrets: { token: TOKEN, managerCaPem: CA },
      overrides: { network: 'pg' },
    });
    expect(playground).toMatchObject({
      clusterAddress: 'ray://pg-head:10001',
      managerUrl: 'https://pg-manager:8443',
      cpus: 3,
      memoryBytes: 6144 * MiB,
      token: TOKEN,
      managerCaPem: CA,
      network: 'pg',
    });
  });

  test('an empty or missing token is no token, never an empty file', () => {
    for (const token of [undefined, null, '', '  ']) {
      const built = agentSpecFor({ settings, name: 'ray-agent', secrets: { token, managerCaPem: token } });
      expect('token' in built).toBe(false);
      expect('managerCaPem' in built).toBe(false);
    }
  });
});

describe('createOptions', () => {
  test('the token and the CA appear nowhere in the create request; the token file path always does', () => {
    const options = createOptions({ ...spec, managerCaPem: CA });
    const text = JSON.stringify(options);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('BEGIN CERTIFICATE');
    expect(options.Env).toContain('AGENT_TOKEN_FILE=/var/lib/ray-agent/secrets/enrollment-token');
    expect(options.Env).toContain('MANAGER_CA_FILE=/var/lib/ray-agent/secrets/manager-ca.pem');
  });

  test('without a token the token file is still where a token would be delivered; without a CA, no MANAGER_CA_FILE', () => {
    const options = createOptions({ ...spec, token: undefined });
    expect(options.Env).toContain('AGENT_TOKEN_FILE=/var/lib/ray-agent/secrets/enrollment-token');
    expect(options.Env?.some((entry) => entry.startsWith('AGENT_TOKEN='))).toBe(false);
    expect(options.Env?.some((entry) => entry.startsWith('MANAGER_CA_FILE'))).toBe(false);
  });
});

describe('validateSpec', () => {
  test.each([
    [{ cpus: 0 }, 'cpus must be above 0'],
    [{ memoryBytes: 100 * MiB }, 'at least 512 MiB'],
    [{ statusPort: 70000 }, 'statusPort must be 1-65535'],
    [{ token: 'has space inside it' }, 'token is empty or contains spaces'],
    [{ extraEnv: { AGENT_TOKEN: 'x' } }, 'extraEnv may not set AGENT_TOKEN'],
    [{ extraEnv: { PROVIDER_NOTE: `see ${TOKEN}` } }, 'holds the enrollment token'],
    [{ name: 'bad name' }, 'is not a container name'],
  ])('%o is refused: %s', (change, words) => {
    expect(() => validateSpec({ ...spec, ...change })).toThrow(words);
  });

  test('a good spec passes', () => {
    expect(() => validateSpec(spec)).not.toThrow();
  });
});

describe('the secrets delivered into the state volume', () => {
  const extract = (archive: Buffer) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rap-secrets-'));
    writeFileSync(path.join(dir, 's.tar'), archive);
    const listing = execFileSync('tar', ['-tvf', path.join(dir, 's.tar'), '--numeric-owner'], { encoding: 'utf8' });
    execFileSync('tar', ['-xf', path.join(dir, 's.tar'), '-C', dir, '--same-owner', '--same-permissions']);
    return { dir, listing, read: (name: string) => readFileSync(path.join(dir, 'secrets', name), 'utf8') };
  };

  test('GNU tar reads secrets/ as 0700 and the files as 0600, all owned by 1000, with the token as content', () => {
    const { dir, listing, read } = extract(secretsArchive({ token: TOKEN, managerCaPem: CA }, {}));
    try {
      expect(listing).toMatch(/^drwx------ 1000\/1000 .* secrets\/$/m);
      expect(listing).toMatch(/^-rw------- 1000\/1000 .* secrets\/enrollment-token$/m);
      expect(listing).toMatch(/^-rw------- 1000\/1000 .* secrets\/manager-ca.pem$/m);
      expect(listing).toMatch(/^-rw------- 1000\/1000 .* secrets\/delivered.json$/m);
      expect(read('enrollment-token')).toBe(TOKEN);
      expect(read('manager-ca.pem')).toBe(CA);
      expect(statSync(path.join(dir, 'secrets')).uid).toBe(1000);
      // The record holds digests only: a Ray task that reads it learns nothing it can use.
      expect(read('delivered.json')).not.toContain(TOKEN);
      expect(JSON.parse(read('delivered.json'))).toEqual(secretDigests({ token: TOKEN, managerCaPem: CA }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('only the secrets given are written: no token, no token file (never an empty one); the record keeps the rest', () => {
    const before: SecretDigests = secretDigests({ token: TOKEN });
    const { dir, listing, read } = extract(secretsArchive({ managerCaPem: CA }, before));
    try {
      expect(listing).not.toContain('enrollment-token');
      expect(read('manager-ca.pem')).toBe(CA);
      expect(JSON.parse(read('delivered.json'))).toEqual(secretDigests({ token: TOKEN, managerCaPem: CA }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a secret already delivered is not written again; a new one is, and a missing one is left alone', () => {
    const delivered = secretDigests({ token: TOKEN, managerCaPem: CA });
    expect(secretsToWrite({ token: TOKEN, managerCaPem: CA }, delivered)).toEqual({});
    expect(secretsToWrite({}, delivered)).toEqual({});
    expect(secretsToWrite({ token: `${TOKEN}2`, managerCaPem: CA }, delivered)).toEqual({ token: `${TOKEN}2` });
    expect(secretsToWrite({ token: TOKEN }, {})).toEqual({ token: TOKEN });
  });

  test("the record is read back from Docker's archive of one file, pax headers and all", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rap-secrets-'));
    try {
      const text = '{"token":"x"}\n';
      writeFileSync(path.join(dir, 'delivered.json'), text);
      for (const format of ['pax', 'gnu', 'ustar']) {
        const archive = execFileSync('tar', [`--format=${format}`, '-cf', '-', '-C', dir, 'delivered.json']);
        expect(firstFileOf(archive), format).toBe(text);
      }
      expect(firstFileOf(Buffer.alloc(1024))).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
