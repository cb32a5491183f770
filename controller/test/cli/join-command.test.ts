import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_SETTINGS } from '@ray-agent/protocol';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { SettingsStore } from '../../src/app/settings-store.js';
import { cliIn, tempSettingsDir } from './run-cli.js';

let dir: string;
let remove: () => void;
let cli: ReturnType<typeof cliIn>;
let tokenFile: string;
const TOKEN = 'enroll_0123456789abcdefghijklmnopqrstuvwxyz';
const CLUSTER = ['--head', 'ray://ray-head.lan:10001', '--manager', 'https://manager.lan:8443'];
const configFile = () => path.join(dir, 'config.json');

beforeEach(() => {
  ({ dir, remove } = tempSettingsDir());
  cli = cliIn(dir);
  tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
});
afterEach(() => remove());

describe('ray-agent join: every flag checked with the settings schema, named', () => {
  test('a bad head and manager are both named, with an example, and nothing is saved', async () => {
    const join = await cli(
      'join',
      '--head',
      'http://ray-head',
      '--manager',
      'http://manager.lan',
      '--token-file',
      tokenFile,
    );
    expect(join.code).toBe(1);
    expect(join.stderr).toContain(
      'ray-agent: --head: must be ray://HOST:10001 or HOST:6379, e.g. ray://ray-head.lan:10001\n',
    );
    expect(join.stderr).toContain(
      'ray-agent: --manager: must be an https:// URL without a user name, e.g. https://manager.lan:8443\n',
    );
    expect(existsSync(configFile())).toBe(false);
  });

  test.each([
    [['--cpus', '0'], '--cpus: must be at least 1 CPU, e.g. 2'],
    [['--cpus', 'all'], '--cpus: must be a number, e.g. 2'],
    [['--memory', 'lots'], '--memory: must be a size in GiB or MiB, e.g. 4g or 4096m'],
    [['--memory', '512m'], '--memory: must be at least 1024 MiB, e.g. 4096'],
    [['--network', 'wifi'], '--network: must be overlay or direct, e.g. overlay'],
    [['--manager-ca', '/nonexistent/ca.pem'], '--manager-ca: cannot read /nonexistent/ca.pem (ENOENT)'],
  ])('%j is refused: %s', async (flags, message) => {
    const join = await cli('join', ...CLUSTER, '--token-file', tokenFile, '--no-start', ...flags);
    expect(join.code).toBe(1);
    expect(join.stderr).toContain(`ray-agent: ${message}\n`);
    expect(existsSync(configFile())).toBe(false);
  });

  test('the token file: required to start, read and checked, never printed', async () => {
    const none = await cli('join', ...CLUSTER);
    expect(none.stderr).toContain('ray-agent: --token-file: required to start');
    writeFileSync(tokenFile, 'short');
    const short = await cli('join', ...CLUSTER, '--token-file', tokenFile);
    expect(short.stderr).toContain(
      'ray-agent: --token-file: the token is too short: paste the whole token the manager printed',
    );
    const missing = await cli('join', ...CLUSTER, '--token-file', path.join(dir, 'nope'));
    expect(missing.stderr).toContain(`ray-agent: --token-file: cannot read ${path.join(dir, 'nope')} (ENOENT)`);
    const head = await cli('join', '--manager', 'https://manager.lan:8443', '--token-file', tokenFile);
    expect(head.code).toBe(1);
    expect(head.stderr).toContain("required option '--head <address>' not specified");
    expect(existsSync(configFile())).toBe(false);
  });

  test('without Docker it saves nothing, so the same command works once Docker runs', async () => {
    const join = await cli('join', ...CLUSTER, '--token-file', tokenFile);
    expect(join.code).toBe(1);
    expect(join.stderr).toMatch(/^ray-agent: .*docker/im);
    expect(join.stdout + join.stderr).not.toContain(TOKEN);
    expect(existsSync(configFile())).toBe(false);
  });
});

describe('ray-agent join --no-start', () => {
  test('saves the cluster and limits the window shows, and prints what changed', async () => {
    const join = await cli(
      'join',
      ...CLUSTER,
      '--token-file',
      tokenFile,
      '--cpus',
      '4',
      '--memory',
      '8g',
      '--network',
      'direct',
      '--no-start',
    );
    expect(join.code, join.stderr).toBe(0);
    expect(join.stdout.split('\n')).toEqual([
      'head = ray://ray-head.lan:10001 (was not set)',
      'manager = https://manager.lan:8443 (was not set)',
      'cpus = 4 (was 2)',
      'memory = 8g (was 4g)',
      'network = direct (was overlay)',
      '',
    ]);
    expect(join.stderr).toContain('not started (--no-start)');
    expect(join.stdout + join.stderr).not.toContain(TOKEN);
    expect(new SettingsStore(dir).load().settings).toEqual({
      ...DEFAULT_SETTINGS,
      clusterAddress: 'ray://ray-head.lan:10001',
      managerUrl: 'https://manager.lan:8443',
      cpus: 4,
      memoryMiB: 8192,
      network: 'direct',
    });
  });

  test('joining another cluster replaces it without asking, and says so', async () => {
    await cli('join', ...CLUSTER, '--no-start');
    const again = await cli('join', '--head', 'gcs.other.lan:6379', '--manager', 'https://other.lan', '--no-start');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(
      'head = gcs.other.lan:6379 (was ray://ray-head.lan:10001)\nmanager = https://other.lan (was https://manager.lan:8443)\n',
    );
    expect(
      (await cli('join', '--head', 'gcs.other.lan:6379', '--manager', 'https://other.lan', '--no-start')).stdout,
    ).toBe('the settings were already these\n');
  });
});

describe('ray-agent run', () => {
  test('without a cluster it says how to join', async () => {
    const run = await cli('run');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('ray-agent: no cluster configured: run `ray-agent join --head');
  });

  test('its help carries a systemd unit', async () => {
    const help = await cli('run', '--help');
    expect(help.stdout).toContain('ExecStart=/usr/local/bin/ray-agent run');
    expect(help.stdout).toContain('TimeoutStopSec=');
  });
});
