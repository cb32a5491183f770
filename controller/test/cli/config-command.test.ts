import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_POLICY, DEFAULT_SETTINGS } from '@ray-agent/protocol';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { SettingsStore } from '../../src/app/settings-store.js';
import { TokenVault } from '../../src/app/token-vault.js';
import { formatSchedule, parseSchedule } from '../../src/policy/schedule-text.js';
import { testKeychainCodec } from '../support/test-keychain-codec.js';
import { cliIn, tempSettingsDir } from './run-cli.js';

let dir: string;
let remove: () => void;
let cli: ReturnType<typeof cliIn>;
const saved = () => new SettingsStore(dir).load().settings;
const fileText = () => readFileSync(path.join(dir, 'config.json'), 'utf8');

beforeEach(() => {
  ({ dir, remove } = tempSettingsDir());
  cli = cliIn(dir);
});
afterEach(() => remove());

describe('ray-agent config get', () => {
  test('prints every setting as key = value, defaults on a new machine, and whether a token is stored', async () => {
    const got = await cli('config', 'get');
    expect(got.code, got.stderr).toBe(0);
    const lines = got.stdout.trim().split('\n');
    expect(lines.slice(0, -1)).toEqual([
      'head = (not set)',
      'manager = (not set)',
      'contribute = off',
      'cpus = 2',
      'memory = 4g',
      'image = ray-agent:dev',
      'network = overlay',
      'statusPort = 8765',
      'onQuit = stop',
      'startAtLogin = off',
      'notifications = on',
      'updates = auto',
      'acceptWork = any',
      'sandboxNetwork = off',
      'policy.idle = off',
      'policy.schedule = off',
      'policy.battery = pause',
      'policy.minBattery = 30%',
      'policy.throttle = 10%',
      'policy.grace = 5m',
      'policy.goingAwayDrain = 20s',
    ]);
    // No engine here: the agent's volume is not looked into, and the line says so.
    expect(lines.at(-1)).toMatch(/^token = none stored; the agent's state volume was not checked \(.+\)$/);
  });

  test('one key prints its value alone; an unknown key lists the keys', async () => {
    expect((await cli('config', 'get', 'policy.throttle')).stdout).toBe('10%\n');
    const unknown = await cli('config', 'get', 'cpu');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(
      'ray-agent: unknown setting "cpu": the settings are head, manager, contribute, cpus, memory,',
    );
    expect(unknown.stderr).toContain('policy.goingAwayDrain');
  });

  test("says a token is in the tray app's keychain without printing it", async () => {
    const token = 'tok_abcdefghijklmnopqrstuvwxyz0123456789';
    expect(new TokenVault(dir, testKeychainCodec()).set(token)).toEqual({ ok: true });
    const all = await cli('config', 'get');
    expect(all.stdout).toMatch(/^token = stored in the tray app's keychain \(never shown\);/m);
    expect(all.stdout + all.stderr).not.toContain(token);
    expect((await cli('config', 'get', 'token')).stdout).toMatch(/^stored in the tray app's keychain/);
  });
});

describe('ray-agent config set', () => {
  test('writes the file the window reads, and says what changed', async () => {
    const set = await cli('config', 'set', 'cpus', '3');
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toBe('cpus = 3 (was 2)\n');
    expect(set.stderr).toContain('`ray-agent up` (or `ray-agent run`) applies it');
    expect(saved()).toEqual({ ...DEFAULT_SETTINGS, cpus: 3 });
    expect((await cli('config', 'get', 'cpus')).stdout).toBe('3\n');
    expect((await cli('config', 'set', 'cpus', '3')).stdout).toBe('cpus = 3 (unchanged)\n');
  });

  test('memory takes 4g or 4096m and is stored in MiB', async () => {
    expect((await cli('config', 'set', 'memory', '6g')).stdout).toBe('memory = 6g (was 4g)\n');
    expect(saved().memoryMiB).toBe(6144);
    expect((await cli('config', 'set', 'memory', '5000m')).stdout).toBe('memory = 5000m (was 6g)\n');
    expect(saved().memoryMiB).toBe(5000);
    expect((await cli('config', 'set', 'memory', '2048')).stdout).toBe('memory = 2g (was 5000m)\n');
  });

  test.each([
    ['cpus', 'two', 'cpus: must be a number, e.g. 2'],
    ['cpus', '0', 'cpus: must be at least 1 CPU, e.g. 2'],
    ['cpus', '1.5', 'cpus: must be a whole number of CPUs, e.g. 2'],
    ['memory', '512m', 'memory: must be at least 1024 MiB, e.g. 4096'],
    ['memory', 'lots', 'memory: must be a size in GiB or MiB, e.g. 4g or 4096m'],
    ['network', 'wifi', 'network: must be overlay or direct, e.g. overlay'],
    ['statusPort', '80', 'statusPort: must be 1024-65535, e.g. 8765'],
    ['image', 'Not An Image', 'image: must be an image reference, e.g. ray-agent:dev'],
    ['updates', 'weekly', 'updates: must be auto or off, e.g. auto'],
    ['notifications', 'maybe', 'notifications: must be on or off, e.g. on'],
    ['policy.idle', '999m', 'policy.idle: idle minutes must be 1-240 minutes, e.g. 5'],
    ['policy.idle', 'soon', 'policy.idle: must be off or a number of idle minutes, e.g. 10m'],
    ['policy.battery', 'never', 'policy.battery: must be allow or pause (on battery power), e.g. pause'],
    ['policy.minBattery', '120%', 'policy.minBattery: battery floor must be 0-100 percent, e.g. 30'],
    ['policy.throttle', '0', 'policy.throttle: throttle must be 1-100 percent, e.g. 10'],
    ['policy.grace', '1.5m', 'policy.grace: grace period must be a whole number of minutes, e.g. 5'],
    ['policy.goingAwayDrain', '601s', 'policy.goingAwayDrain: drain deadline must be 0-600 seconds, e.g. 20'],
    ['policy.schedule', 'mon-fri', 'policy.schedule: "mon-fri" has no hours after it'],
  ])('%s %s is refused with the schema message, and nothing is written', async (key, value, message) => {
    await cli('config', 'set', 'notifications', 'off'); // a file to keep
    const before = fileText();
    const set = await cli('config', 'set', key, value);
    expect(set.code).toBe(1);
    expect(set.stderr).toContain(`ray-agent: ${message}`);
    expect(set.stdout).toBe('');
    expect(fileText()).toBe(before);
  });

  test('the policy keys change one part of the policy each', async () => {
    const steps: Array<[string, string, string]> = [
      ['policy.idle', '10m', 'policy.idle = 10m (was off)'],
      ['policy.battery', 'allow', 'policy.battery = allow (was pause)'],
      ['policy.minBattery', '20%', 'policy.minBattery = 20% (was 30%)'],
      ['policy.throttle', '25', 'policy.throttle = 25% (was 10%)'],
      ['policy.grace', '0', 'policy.grace = 0m (was 5m)'],
      ['policy.goingAwayDrain', '60s', 'policy.goingAwayDrain = 60s (was 20s)'],
    ];
    for (const [key, value, line] of steps) {
      const set = await cli('config', 'set', key, value);
      expect(set.stdout.trim(), set.stderr).toBe(line);
    }
    expect(saved().policy).toEqual({
      ...DEFAULT_POLICY,
      idle: { enabled: true, minutes: 10 },
      battery: { pauseOnBattery: false, minPercent: 20 },
      throttlePercent: 25,
      graceMinutes: 0,
      goingAwayDrainSeconds: 60,
    });
    // off keeps the minutes for when it is turned on again.
    expect((await cli('config', 'set', 'policy.idle', 'off')).stdout).toBe('policy.idle = off (was 10m)\n');
    expect(saved().policy.idle).toEqual({ enabled: false, minutes: 10 });
    expect((await cli('config', 'set', 'policy.idle', 'on')).stdout).toBe('policy.idle = 10m (was off)\n');
  });

  test('policy.schedule takes the schedule text and prints it back', async () => {
    const text = 'mon-fri 18-08, sat-sun 00-24';
    const set = await cli('config', 'set', 'policy.schedule', text);
    expect(set.code, set.stderr).toBe(0);
    expect(saved().policy.schedule).toEqual({ enabled: true, hours: parseSchedule(text) });
    expect((await cli('config', 'get', 'policy.schedule')).stdout).toBe(`${formatSchedule(parseSchedule(text))}\n`);
    await cli('config', 'set', 'policy.schedule', 'off');
    expect(saved().policy.schedule).toEqual({ enabled: false, hours: parseSchedule(text) });
  });

  test('the cluster, the switch and the token have commands of their own', async () => {
    const head = await cli('config', 'set', 'head', 'ray://other:10001');
    expect(head.code).toBe(1);
    expect(head.stderr).toContain('ray-agent: head is set with `ray-agent join --head');
    expect((await cli('config', 'set', 'contribute', 'on')).stderr).toContain('`ray-agent up` and `ray-agent down`');
    expect((await cli('config', 'set', 'token', 'x')).stderr).toContain('--token-file');
    expect((await cli('config', 'set', 'nope', '1')).stderr).toContain('unknown setting "nope"');
    expect(existsSync(path.join(dir, 'config.json'))).toBe(false);
  });

  test('a file the window wrote is changed key by key, its other values kept', async () => {
    const store = new SettingsStore(dir);
    expect(store.save({ clusterAddress: 'ray://ray-head.lan:10001', managerUrl: 'https://manager.lan:8443' }).ok).toBe(
      true,
    );
    await cli('config', 'set', 'onQuit', 'leave-running');
    expect(store.load().settings).toMatchObject({
      clusterAddress: 'ray://ray-head.lan:10001',
      managerUrl: 'https://manager.lan:8443',
      onQuit: 'leave-running',
    });
    expect((await cli('config', 'get', 'head')).stdout).toBe('ray://ray-head.lan:10001\n');
  });
});
