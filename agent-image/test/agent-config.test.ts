import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/agent-config.js';
import { tempDir } from './helpers.js';

const TOKEN = 'tok_0123456789abcdefABCDEF-_xyz1'; // 32 characters
const MINIMAL = {
  RAY_HEAD: 'ray://head:10001',
  MANAGER_URL: 'https://m.test/api/register',
  AGENT_TOKEN: TOKEN,
};

type Env = Record<string, string | undefined>;

/** Runs loadConfig and returns the ConfigError it throws; fails the test if it throws anything else or nothing. */
function configError(env: Env): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig: valid environments', () => {
  it('reads a minimal environment', () => {
    expect(TOKEN).toHaveLength(32);
    const config = loadConfig(MINIMAL);
    expect(config.gcs).toEqual({ host: 'head', port: 6379 });
    expect(config.rayHead).toBe('ray://head:10001');
    expect(config.manager).toEqual({
      base: 'https://m.test',
      register: 'https://m.test/api/register',
      heartbeat: 'https://m.test/api/heartbeat',
    });
    expect(config.token).toBe(TOKEN);
    expect(config.cpuLimit).toBeUndefined();
    expect(config.memoryLimit).toBeUndefined();
    expect(config.managerCaFile).toBeUndefined();
  });

  it.each([
    'https://m.test',
    'https://m.test/',
    'https://m.test/api/register',
    'https://m.test/api/register/',
    'https://m.test/api/heartbeat',
  ])('derives the same endpoints from MANAGER_URL=%s', (url) => {
    expect(loadConfig({ ...MINIMAL, MANAGER_URL: url }).manager).toEqual({
      base: 'https://m.test',
      register: 'https://m.test/api/register',
      heartbeat: 'https://m.test/api/heartbeat',
    });
  });

  it('keeps a path prefix and a port in the base URL', () => {
    expect(loadConfig({ ...MINIMAL, MANAGER_URL: 'https://m.test:8443/ray/api/register' }).manager).toEqual({
      base: 'https://m.test:8443/ray',
      register: 'https://m.test:8443/ray/api/register',
      heartbeat: 'https://m.test:8443/ray/api/heartbeat',
    });
  });

  it('joins the GCS on RAY_GCS_PORT for a ray:// address', () => {
    expect(loadConfig({ ...MINIMAL, RAY_GCS_PORT: '6380' }).gcs).toEqual({ host: 'head', port: 6380 });
  });

  it('takes a plain HOST:PORT as the GCS address itself', () => {
    expect(loadConfig({ ...MINIMAL, RAY_HEAD: 'head.example.net:6390' }).gcs).toEqual({
      host: 'head.example.net',
      port: 6390,
    });
    expect(loadConfig({ ...MINIMAL, RAY_HEAD: '10.0.0.5:6379', RAY_GCS_PORT: '7000' }).gcs).toEqual({
      host: '10.0.0.5',
      port: 6379,
    });
  });

  it('accepts plain http for a loopback manager behind MANAGER_ALLOW_HTTP=1', () => {
    const config = loadConfig({ ...MINIMAL, MANAGER_URL: 'http://127.0.0.1:8443', MANAGER_ALLOW_HTTP: '1' });
    expect(config.manager.register).toBe('http://127.0.0.1:8443/api/register');
    expect(config.manager.heartbeat).toBe('http://127.0.0.1:8443/api/heartbeat');
  });

  it('parses CPU_LIMIT and MEMORY_LIMIT', () => {
    const config = loadConfig({ ...MINIMAL, CPU_LIMIT: '1.5', MEMORY_LIMIT: '4g' });
    expect(config.cpuLimit).toBe(1.5);
    expect(config.memoryLimit).toBe(4 * 1024 ** 3);
    expect(loadConfig({ ...MINIMAL, MEMORY_LIMIT: '512m' }).memoryLimit).toBe(512 * 1024 ** 2);
  });

  it('reads the token from AGENT_TOKEN_FILE, without the trailing newline', () => {
    const file = join(tempDir(), 'agent-token');
    writeFileSync(file, `${TOKEN}\n`);
    const { AGENT_TOKEN: _, ...rest } = MINIMAL;
    expect(loadConfig({ ...rest, AGENT_TOKEN_FILE: file }).token).toBe(TOKEN);
  });

  it('treats empty variables as unset', () => {
    const config = loadConfig({ ...MINIMAL, CPU_LIMIT: '', MEMORY_LIMIT: '  ', AGENT_TOKEN: '' });
    expect(config.cpuLimit).toBeUndefined();
    expect(config.memoryLimit).toBeUndefined();
    expect(config.token).toBeUndefined();
  });
});

describe('loadConfig: each bad variable is one line naming it, the problem and an example', () => {
  const cases: Array<[string, Env, RegExp]> = [
    ['RAY_HEAD', { RAY_HEAD: 'http://x' }, /must start with ray:\/\/ or be a plain HOST:PORT/],
    ['RAY_HEAD', { RAY_HEAD: 'ray://' }, /must be ray:\/\/HOST/],
    ['RAY_HEAD', { RAY_HEAD: 'head:99999' }, /invalid port "99999"/],
    ['RAY_HEAD', { RAY_HEAD: undefined }, /is not set/],
    ['MANAGER_URL', { MANAGER_URL: 'ftp://x' }, /must use https:\/\//],
    ['MANAGER_URL', { MANAGER_URL: 'http://remote.test' }, /must use https:\/\/.*MANAGER_ALLOW_HTTP=1/],
    ['MANAGER_URL', { MANAGER_URL: 'http://remote.test', MANAGER_ALLOW_HTTP: '1' }, /only for a loopback host/],
    ['MANAGER_URL', { MANAGER_URL: 'https://user:pw@m.test' }, /must not contain a user name or password/],
    ['MANAGER_URL', { MANAGER_URL: undefined }, /is not set/],
    ['MEMORY_LIMIT', { MEMORY_LIMIT: '4x' }, /unknown unit "x"/],
    ['MEMORY_LIMIT', { MEMORY_LIMIT: 'abc' }, /is not a size/],
    ['MEMORY_LIMIT', { MEMORY_LIMIT: '100m' }, /below the 512m/],
    ['CPU_LIMIT', { CPU_LIMIT: '0' }, /must be more than zero/],
    ['CPU_LIMIT', { CPU_LIMIT: '-1' }, /is not a number of CPUs/],
    ['CPU_LIMIT', { CPU_LIMIT: 'two' }, /is not a number of CPUs/],
    ['AGENT_TOKEN', { AGENT_TOKEN_FILE: '/nonexistent/agent-token' }, /both set/],
    ['AGENT_TOKEN', { AGENT_TOKEN: 'has a space in the middle of it' }, /contains spaces or control characters/],
    ['AGENT_TOKEN', { AGENT_TOKEN: 'short' }, /shorter than 16 characters/],
  ];

  it.each(cases)('%s with %j', (variable, overrides, problem) => {
    const error = configError({ ...MINIMAL, ...overrides });
    expect(error.variable).toBe(variable);
    expect(error.message.startsWith(`${variable}: `)).toBe(true);
    expect(error.message).toMatch(problem);
    expect(error.message).toContain('e.g.');
    expect(error.message).not.toContain('\n');
  });

  it('AGENT_TOKEN_FILE naming a missing file', () => {
    const { AGENT_TOKEN: _, ...rest } = MINIMAL;
    const error = configError({ ...rest, AGENT_TOKEN_FILE: join(tempDir(), 'no-such-token') });
    expect(error.variable).toBe('AGENT_TOKEN_FILE');
    expect(error.message.startsWith('AGENT_TOKEN_FILE: ')).toBe(true);
    expect(error.message).toMatch(/does not exist/);
    expect(error.message).toContain('e.g.');
  });

  it('never echoes the password of a MANAGER_URL', () => {
    const error = configError({ ...MINIMAL, MANAGER_URL: 'https://alice:Sup3rS3cretPassw0rd@m.test/api/register' });
    expect(error.message).not.toContain('Sup3rS3cretPassw0rd');
    expect(error.message).not.toContain('alice');
  });
});

describe('loadConfig never echoes the token', () => {
  const PLANTED = 'PLANTED-d1stinct1ve-t0ken value';

  it('in AGENT_TOKEN', () => {
    const error = configError({ ...MINIMAL, AGENT_TOKEN: PLANTED });
    expect(error.variable).toBe('AGENT_TOKEN');
    expect(error.message).toMatch(/spaces or control characters/);
    expect(error.message).not.toContain('d1stinct1ve');
  });

  it('in AGENT_TOKEN_FILE', () => {
    const file = join(tempDir(), 'agent-token');
    writeFileSync(file, `${PLANTED}\n`);
    const { AGENT_TOKEN: _, ...rest } = MINIMAL;
    const error = configError({ ...rest, AGENT_TOKEN_FILE: file });
    expect(error.variable).toBe('AGENT_TOKEN_FILE');
    expect(error.message).not.toContain('d1stinct1ve');
  });

  it('in a token that is too short or has a control character', () => {
    for (const token of ['PLANTEDshort', 'PLANTED-d1stinct1ve\u0007-t0ken-long-enough']) {
      const error = configError({ ...MINIMAL, AGENT_TOKEN: token });
      expect(error.variable).toBe('AGENT_TOKEN');
      expect(error.message).not.toContain('PLANTED');
    }
  });

  it('when both AGENT_TOKEN and AGENT_TOKEN_FILE are set', () => {
    const file = join(tempDir(), 'agent-token');
    writeFileSync(file, 'PLANTED-d1stinct1ve-t0ken-in-a-file\n');
    const error = configError({ ...MINIMAL, AGENT_TOKEN: 'PLANTED-d1stinct1ve-t0ken-inline', AGENT_TOKEN_FILE: file });
    expect(error.message).not.toContain('d1stinct1ve');
  });
});

describe('the sandbox rules', () => {
  it('default to any work and no network for sandboxes', () => {
    expect(loadConfig(MINIMAL)).toMatchObject({ acceptWork: 'any', sandboxNetwork: false });
    expect(loadConfig({ ...MINIMAL, ACCEPT_WORK: 'Sandboxed', SANDBOX_NETWORK: 'on' })).toMatchObject({
      acceptWork: 'sandboxed',
      sandboxNetwork: true,
    });
  });

  it.each([
    ['ACCEPT_WORK', 'trusted', /ACCEPT_WORK: "trusted" must be any or sandboxed \(e\.g\. ACCEPT_WORK=sandboxed\)/],
    ['SANDBOX_NETWORK', 'yes', /SANDBOX_NETWORK: "yes" must be on or off \(e\.g\. SANDBOX_NETWORK=off\)/],
  ])('refuse %s=%s, naming the variable and a good value', (name, value, message) => {
    const error = configError({ ...MINIMAL, [name]: value });
    expect(error.variable).toBe(name);
    expect(error.message).toMatch(message);
  });
});
