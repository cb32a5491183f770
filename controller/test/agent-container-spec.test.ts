import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  type AgentSpec,
  configHash,
  createOptions,
  secretsArchive,
  shmSizeFor,
  tmpfsSizeFor,
  validateSpec,
} from '../src/agent-container-spec.js';

const MiB = 1024 ** 2;
const GiB = 1024 * MiB;
const TOKEN = 'rap-unit-token-0123456789abcdef';

const spec: AgentSpec = {
  image: 'ray-agent:dev',
  clusterAddress: 'ray://head.lan:10001',
  managerUrl: 'https://manager.lan:8443',
  cpus: 2,
  memoryBytes: 4 * GiB,
  statusPort: 8765,
  token: TOKEN,
};

describe('container sizes', () => {
  test("/dev/shm fits the agent's object store (30% of memory) with the 10% headroom the agent keeps", () => {
    for (const memory of [512 * MiB, 1 * GiB, 4 * GiB, 16 * GiB, 3 * GiB + 7]) {
      const shm = shmSizeFor(memory);
      const store = Math.max(128 * MiB, Math.floor(memory * 0.3));
      expect(shm % MiB).toBe(0);
      // The agent uses at most 90% of /dev/shm for the store (agent-image/src/limits/ray-resources.ts).
      expect(Math.floor(shm * 0.9)).toBeGreaterThanOrEqual(store);
      expect(shm).toBeLessThan(store * 1.2);
    }
    expect(shmSizeFor(512 * MiB)).toBeGreaterThanOrEqual(128 * MiB);
  });

  test('/tmp is half the memory, at most 2 GiB', () => {
    expect(tmpfsSizeFor(1 * GiB)).toBe(512 * MiB);
    expect(tmpfsSizeFor(16 * GiB)).toBe(2 * GiB);
  });
});

describe('configHash', () => {
  test('changes with the token and the CA but contains neither', () => {
    const base = configHash(spec);
    expect(configHash({ ...spec })).toBe(base);
    expect(configHash({ ...spec, token: `${TOKEN}x` })).not.toBe(base);
    expect(configHash({ ...spec, managerCaPem: 'pem' })).not.toBe(base);
    expect(configHash({ ...spec, cpus: 3 })).not.toBe(base);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
  });

  test('does not depend on the order of extraEnv', () => {
    expect(configHash({ ...spec, extraEnv: { A: '1', B: '2' } })).toBe(
      configHash({ ...spec, extraEnv: { B: '2', A: '1' } }),
    );
  });
});

describe('createOptions', () => {
  test('the token appears nowhere in the create request; the file path does', () => {
    const options = createOptions({ ...spec, managerCaPem: '-----BEGIN CERTIFICATE-----\nx\n' });
    const text = JSON.stringify(options);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('BEGIN CERTIFICATE');
    expect(options.Env).toContain('AGENT_TOKEN_FILE=/var/lib/ray-agent/secrets/enrollment-token');
    expect(options.Env).toContain('MANAGER_CA_FILE=/var/lib/ray-agent/secrets/manager-ca.pem');
  });

  test('no token, no AGENT_TOKEN_FILE', () => {
    const options = createOptions({ ...spec, token: undefined });
    expect(options.Env?.some((entry) => entry.startsWith('AGENT_TOKEN'))).toBe(false);
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

describe('secretsArchive', () => {
  test('GNU tar reads secrets/ as 0700 and the files as 0600, all owned by 1000, with the token as content', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rap-secrets-'));
    try {
      writeFileSync(path.join(dir, 's.tar'), secretsArchive({ ...spec, managerCaPem: 'the ca' }));
      const listing = execFileSync('tar', ['-tvf', path.join(dir, 's.tar'), '--numeric-owner'], { encoding: 'utf8' });
      expect(listing).toMatch(/^drwx------ 1000\/1000 .* secrets\/$/m);
      expect(listing).toMatch(/^-rw------- 1000\/1000 .* secrets\/enrollment-token$/m);
      expect(listing).toMatch(/^-rw------- 1000\/1000 .* secrets\/manager-ca.pem$/m);
      execFileSync('tar', ['-xf', path.join(dir, 's.tar'), '-C', dir, '--same-owner', '--same-permissions']);
      expect(readFileSync(path.join(dir, 'secrets', 'enrollment-token'), 'utf8')).toBe(TOKEN);
      expect(readFileSync(path.join(dir, 'secrets', 'manager-ca.pem'), 'utf8')).toBe('the ca');
      expect(statSync(path.join(dir, 'secrets')).uid).toBe(1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without a token the file is written empty, so an old token does not linger', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rap-secrets-'));
    try {
      writeFileSync(path.join(dir, 's.tar'), secretsArchive({ ...spec, token: undefined }));
      execFileSync('tar', ['-xf', path.join(dir, 's.tar'), '-C', dir]);
      expect(readFileSync(path.join(dir, 'secrets', 'enrollment-token'), 'utf8')).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
