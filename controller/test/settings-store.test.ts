import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_POLICY, DEFAULT_SETTINGS, SETTINGS_MIGRATIONS, SETTINGS_VERSION } from '@ray-agent/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultSettingsDir, SettingsStore } from '../src/app/settings-store.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'settings-store-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const configFile = () => path.join(dir, 'config.json');

describe('defaultSettingsDir: the folder Electron uses as userData for "Ray Agent"', () => {
  it('Linux honours an absolute XDG_CONFIG_HOME, else ~/.config', () => {
    expect(defaultSettingsDir('linux', { XDG_CONFIG_HOME: '/xdg' }, '/home/ana')).toBe('/xdg/Ray Agent');
    expect(defaultSettingsDir('linux', {}, '/home/ana')).toBe('/home/ana/.config/Ray Agent');
    expect(defaultSettingsDir('linux', { XDG_CONFIG_HOME: 'relative' }, '/home/ana')).toBe(
      '/home/ana/.config/Ray Agent',
    );
  });
  it('macOS uses Application Support; Windows uses %APPDATA%', () => {
    expect(defaultSettingsDir('darwin', {}, '/Users/ana')).toBe('/Users/ana/Library/Application Support/Ray Agent');
    expect(defaultSettingsDir('win32', { APPDATA: 'C:\\Users\\ana\\AppData\\Roaming' }, 'C:\\Users\\ana')).toBe(
      'C:\\Users\\ana\\AppData\\Roaming\\Ray Agent',
    );
  });
});

describe('SettingsStore', () => {
  it('a missing file loads the defaults and writes nothing', () => {
    const store = new SettingsStore(dir);
    expect(store.load()).toEqual({ settings: DEFAULT_SETTINGS, notice: null });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('round trip: saved settings load back, in the tab-indented JSON electron-store writes', () => {
    const store = new SettingsStore(dir);
    const saved = store.save({
      clusterAddress: ' ray://head.lan:10001 ',
      cpus: 3,
      memoryMiB: 8192,
      contribute: true,
    });
    expect(saved).toEqual({
      ok: true,
      settings: {
        ...DEFAULT_SETTINGS,
        clusterAddress: 'ray://head.lan:10001',
        cpus: 3,
        memoryMiB: 8192,
        contribute: true,
      },
    });
    const again = new SettingsStore(dir).load();
    expect(again.notice).toBeNull();
    expect(again.settings).toEqual(saved.ok ? saved.settings : null);
    const text = readFileSync(configFile(), 'utf8');
    expect(text).toContain('\n\t"clusterAddress": "ray://head.lan:10001"');
    expect(JSON.parse(text)).toEqual(again.settings);
  });

  it('keys missing from the file are filled from the defaults', () => {
    writeFileSync(configFile(), JSON.stringify({ version: SETTINGS_VERSION, cpus: 4 }));
    expect(new SettingsStore(dir).load()).toEqual({ settings: { ...DEFAULT_SETTINGS, cpus: 4 }, notice: null });
  });

  it('corrupt JSON is copied aside byte for byte, replaced by defaults, and reported', () => {
    const garbage = Buffer.from('{"version":1,"cpus":\u0000\xff oops');
    writeFileSync(configFile(), garbage);
    const store = new SettingsStore(dir, { now: () => new Date('2025-03-04T05:06:07.089Z') });
    const { settings, notice } = store.load();
    expect(settings).toEqual(DEFAULT_SETTINGS);
    const kept = path.join(dir, 'config.json.corrupt-2025-03-04T05-06-07-089Z');
    expect(notice).toBe(`Your settings file was unreadable and was reset to defaults; the old file is kept at ${kept}`);
    expect(readFileSync(kept)).toEqual(garbage);
    expect(JSON.parse(readFileSync(configFile(), 'utf8'))).toEqual(DEFAULT_SETTINGS);
    // The next load is clean: the reset file is valid.
    expect(store.load()).toEqual({ settings: DEFAULT_SETTINGS, notice: null });
  });

  it('valid JSON with wrong types is treated as unreadable too, and a second quarantine does not overwrite the first', () => {
    const store = new SettingsStore(dir, { now: () => new Date('2025-03-04T05:06:07.089Z') });
    const wrong = JSON.stringify({ version: 1, cpus: 'lots', contribute: 'yes' });
    writeFileSync(configFile(), wrong);
    expect(store.load().notice).toContain('config.json.corrupt-2025-03-04T05-06-07-089Z');
    writeFileSync(configFile(), '[1,2,3]');
    expect(store.load().notice).toContain('config.json.corrupt-2025-03-04T05-06-07-089Z-1');
    expect(readFileSync(path.join(dir, 'config.json.corrupt-2025-03-04T05-06-07-089Z'), 'utf8')).toBe(wrong);
    expect(readFileSync(path.join(dir, 'config.json.corrupt-2025-03-04T05-06-07-089Z-1'), 'utf8')).toBe('[1,2,3]');
  });

  it('an invalid patch returns field errors and leaves the file byte for byte as it was', () => {
    const store = new SettingsStore(dir);
    expect(store.save({ cpus: 2, image: 'ray-agent:stable' }).ok).toBe(true);
    const before = readFileSync(configFile());
    const result = store.save({
      cpus: 0.1,
      managerUrl: 'http://manager.lan',
      clusterAddress: 'head.lan',
      image: 'ray-agent:next',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.cpus).toBe('must be a whole number of CPUs, e.g. 2');
    expect(result.errors.managerUrl).toContain('must be an https:// URL');
    expect(result.errors.clusterAddress).toContain('must be ray://HOST:10001 or HOST:6379');
    expect(result.errors.image).toBeUndefined();
    expect(readFileSync(configFile())).toEqual(before);
    expect(store.load().settings.image).toBe('ray-agent:stable');
  });

  it('a patch with a wrong type or an unknown key is refused and changes nothing', () => {
    const store = new SettingsStore(dir);
    store.save({ cpus: 2 });
    const before = readFileSync(configFile());
    const wrongType = store.save({ memoryMiB: '4096' });
    expect(wrongType.ok).toBe(false);
    if (!wrongType.ok) expect(Object.keys(wrongType.errors)).toEqual(['memoryMiB']);
    const unknown = store.save({ cpus: 3, dockerSocket: '/var/run/docker.sock' });
    expect(unknown.ok).toBe(false);
    if (!unknown.ok) expect(unknown.errors.version).toContain('dockerSocket');
    expect(store.save({ version: 2 }).ok).toBe(false);
    expect(readFileSync(configFile())).toEqual(before);
  });

  it('CPUs are whole: 2.5 is refused with an example, 0 and 0.5 too', () => {
    const store = new SettingsStore(dir);
    for (const cpus of [2.5, 0.5]) {
      const result = store.save({ cpus });
      expect(result).toEqual({ ok: false, errors: { cpus: 'must be a whole number of CPUs, e.g. 2' } });
    }
    expect(store.save({ cpus: 0 })).toEqual({ ok: false, errors: { cpus: 'must be at least 1 CPU, e.g. 2' } });
    expect(store.save({ cpus: 2 }).ok).toBe(true);
  });

  it('an undefined value in a patch leaves that setting as it was', () => {
    const store = new SettingsStore(dir);
    store.save({ cpus: 3 });
    expect(store.save({ cpus: undefined, contribute: true })).toEqual({
      ok: true,
      settings: { ...DEFAULT_SETTINGS, cpus: 3, contribute: true },
    });
  });

  it('a writer process killed with SIGKILL mid-save leaves the file old or new, never partial (20 real kills)', {
    timeout: 180_000,
  }, async () => {
    const moduleUrl = new URL('../src/app/settings-store.ts', import.meta.url).href;
    const script = path.join(dir, 'writer.mjs');
    // Continues the sequence from what is on disk, so each file seen after a kill must be at least as new as the
    // last one: the store can only move forward, never to a torn or older state.
    writeFileSync(
      script,
      `import { SettingsStore } from ${JSON.stringify(moduleUrl)};
const store = new SettingsStore(process.argv[2]);
let n = Number(/v(\\d+)$/.exec(store.load().settings.image)?.[1] ?? 0);
process.stdout.write('ready\\n');
for (;;) {
  n++;
  const result = store.save({ image: 'ray-agent:v' + n, cpus: 1 + (n % 8), clusterAddress: 'head-' + n + '.lan:6379' });
  if (!result.ok) { process.stderr.write(JSON.stringify(result)); process.exit(3); }
}
`,
    );
    const data = path.join(dir, 'data');
    const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
    const tempFiles = () => {
      try {
        return readdirSync(data).filter((name) => name.includes('.tmp-'));
      } catch {
        return [];
      }
    };
    let previous = 0;
    let tempFilesSeen = 0;
    for (let kill = 0; kill < 20; kill++) {
      // `--import tsx` resolves from cwd: the repository root, where tsx is installed.
      const child = spawn(process.execPath, ['--import', 'tsx', script, data], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
      });
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`writer exited ${code} before saving: ${stderr}`)));
      });
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 60));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      tempFilesSeen += tempFiles().length;

      const { settings, notice } = new SettingsStore(data).load();
      expect(notice).toBeNull();
      const n = Number(/v(\d+)$/.exec(settings.image)?.[1] ?? 0);
      expect(n).toBeGreaterThanOrEqual(previous);
      if (n === 0) {
        // Killed before its first save: nothing on disk yet.
        expect(settings).toEqual(DEFAULT_SETTINGS);
      } else {
        // Every field comes from the same save: a mix would mean a torn write.
        expect(settings.cpus).toBe(1 + (n % 8));
        expect(settings.clusterAddress).toBe(`head-${n}.lan:6379`);
      }
      previous = n;
      expect(tempFiles()).toEqual([]);
    }
    // The writers really ran: hundreds of saves happened across the kills.
    expect(previous).toBeGreaterThan(20);
    // Informational: how often a kill landed between temp-file creation and rename.
    console.warn(`settings-store kill test: ${previous} saves, ${tempFilesSeen} torn temp files cleaned`);
  });
});

describe('SettingsStore: versions and migrations', () => {
  const v1File = {
    version: 1,
    clusterAddress: 'ray://head.lan:10001',
    managerUrl: 'https://manager.lan:8443',
    cpus: 2.5,
    memoryMiB: 6144,
    image: 'ray-agent:1.0',
    contribute: true,
    startAtLogin: true,
    onQuit: 'leave-running',
    statusPort: 18765,
  };

  /** What v5 added to every older file: any work accepted, no network for sandboxes. */
  function v5Added() {
    return { acceptWork: 'any', sandboxNetwork: false };
  }

  /** What v4 added to every older file: the policy's defaults, notifications on, updates automatic. */
  const v4Added = { policy: DEFAULT_POLICY, notifications: true, updates: 'auto', ...v5Added() };

  it('every version before the current one has its migration step', () => {
    for (let version = 1; version < SETTINGS_VERSION; version++)
      expect(SETTINGS_MIGRATIONS[version]).toBeTypeOf('function');
  });

  it('a v1 file is migrated (CPUs rounded down to whole, at least 1), saved, and its old bytes kept aside once', () => {
    const bytes = `${JSON.stringify(v1File, null, 2)}\n`;
    writeFileSync(configFile(), bytes);
    const store = new SettingsStore(dir, { now: () => new Date('2026-01-02T03:04:05.006Z') });
    const expected = { ...v1File, version: SETTINGS_VERSION, cpus: 2, network: 'overlay', ...v4Added };
    expect(store.load()).toEqual({ settings: expected, notice: null });
    // Saved at the current version, so the next load has nothing to migrate and keeps no second copy.
    expect(JSON.parse(readFileSync(configFile(), 'utf8'))).toEqual(expected);
    expect(readFileSync(path.join(dir, 'config.json.v1-2026-01-02T03-04-05-006Z'), 'utf8')).toBe(bytes);
    expect(new SettingsStore(dir).load()).toEqual({ settings: expected, notice: null });
    expect(readdirSync(dir).filter((name) => name.startsWith('config.json.v1-'))).toHaveLength(1);
  });

  it('a v1 file with half a CPU becomes 1 CPU; a file from before versions counts as v1', () => {
    writeFileSync(configFile(), JSON.stringify({ ...v1File, cpus: 0.5 }));
    expect(new SettingsStore(dir).load().settings.cpus).toBe(1);
    const { version: _none, ...unversioned } = v1File;
    writeFileSync(configFile(), JSON.stringify({ ...unversioned, cpus: 3.5 }));
    expect(new SettingsStore(dir).load()).toEqual({
      settings: { ...v1File, version: SETTINGS_VERSION, cpus: 3, network: 'overlay', ...v4Added },
      notice: null,
    });
  });

  it('a v2 file gets the tunnel pair (network overlay); one that already says direct keeps it', () => {
    const v2File = { ...v1File, version: 2, cpus: 2 };
    writeFileSync(configFile(), JSON.stringify(v2File));
    expect(new SettingsStore(dir).load()).toEqual({
      settings: { ...v2File, version: SETTINGS_VERSION, network: 'overlay', ...v4Added },
      notice: null,
    });
    writeFileSync(configFile(), JSON.stringify({ ...v2File, network: 'direct' }));
    expect(new SettingsStore(dir).load().settings.network).toBe('direct');
  });

  it('a v3 file gets the policy, notifications and updates; a policy it already has is kept', () => {
    const v3File = { ...v1File, version: 3, cpus: 2, network: 'direct' };
    writeFileSync(configFile(), JSON.stringify(v3File));
    expect(new SettingsStore(dir).load()).toEqual({
      settings: { ...v3File, version: SETTINGS_VERSION, ...v4Added },
      notice: null,
    });
    const ownPolicy = { ...DEFAULT_POLICY, idle: { enabled: true, minutes: 15 } };
    writeFileSync(configFile(), JSON.stringify({ ...v3File, policy: ownPolicy, updates: 'off' }));
    const { settings } = new SettingsStore(dir).load();
    expect(settings.policy).toEqual(ownPolicy);
    expect(settings.updates).toBe('off');
  });

  it('a v4 file accepts any work and gives sandboxes no network; what it already says is kept', () => {
    const v4File = {
      ...v1File,
      version: 4,
      cpus: 2,
      network: 'direct',
      policy: DEFAULT_POLICY,
      notifications: false,
      updates: 'off',
    };
    writeFileSync(configFile(), JSON.stringify(v4File));
    expect(new SettingsStore(dir).load()).toEqual({
      settings: { ...v4File, version: SETTINGS_VERSION, ...v5Added() },
      notice: null,
    });
    writeFileSync(configFile(), JSON.stringify({ ...v4File, acceptWork: 'sandboxed' }));
    expect(new SettingsStore(dir).load().settings.acceptWork).toBe('sandboxed');
    const store = new SettingsStore(dir);
    const refused = store.save({ acceptWork: 'trusted' as never });
    expect(JSON.stringify(refused)).toContain('must be any or sandboxed, e.g. any');
  });

  it('a bad policy value is refused naming the field, the problem and an example, and nothing is written', () => {
    const store = new SettingsStore(dir);
    store.save({ cpus: 3 });
    const before = readFileSync(configFile(), 'utf8');
    const saved = store.save({ policy: { ...DEFAULT_POLICY, graceMinutes: 1000 } });
    expect(saved).toEqual({ ok: false, errors: { policy: 'grace period must be 0-240 minutes, e.g. 5' } });
    expect(readFileSync(configFile(), 'utf8')).toBe(before);
  });

  it('a network other than overlay or direct is refused with the field, the problem and an example', () => {
    const store = new SettingsStore(dir);
    const saved = store.save({ network: 'vpn' as never });
    expect(saved).toEqual({ ok: false, errors: { network: 'must be overlay or direct, e.g. overlay' } });
  });

  it('a v1 file that does not validate even migrated is unreadable as before: kept aside, defaults, a notice', () => {
    writeFileSync(configFile(), JSON.stringify({ ...v1File, cpus: 'lots' }));
    const { settings, notice } = new SettingsStore(dir).load();
    expect(settings).toEqual(DEFAULT_SETTINGS);
    expect(notice).toContain('was unreadable and was reset to defaults');
    expect(readdirSync(dir).filter((name) => name.startsWith('config.json.corrupt-'))).toHaveLength(1);
  });

  it.each([['two'], [0], [1.5], [null]])('a version of %o is no version: unreadable', (version) => {
    writeFileSync(configFile(), JSON.stringify({ ...v1File, version }));
    expect(new SettingsStore(dir).load().notice).toContain('was unreadable');
  });

  it('a file a newer app wrote is never reset: read as far as understood, said so, and its unknown keys survive a save', () => {
    const newer = {
      ...v1File,
      version: SETTINGS_VERSION + 1,
      cpus: 4,
      // A setting this version does not know, and one whose newer form it cannot read.
      gpus: { count: 1, vendor: 'nvidia' },
      onQuit: 'ask-me',
    };
    const bytes = JSON.stringify(newer);
    writeFileSync(configFile(), bytes);
    const store = new SettingsStore(dir);
    const loaded = store.load();
    expect(loaded.notice).toContain('written by a newer Ray Agent');
    expect(loaded.notice).toContain('some options are not shown');
    expect(loaded.settings).toEqual({
      ...v1File,
      version: SETTINGS_VERSION,
      cpus: 4,
      onQuit: DEFAULT_SETTINGS.onQuit,
      network: DEFAULT_SETTINGS.network,
      ...v4Added,
    });
    // Reading changed nothing on disk.
    expect(readFileSync(configFile(), 'utf8')).toBe(bytes);

    const saved = store.save({ memoryMiB: 8192, contribute: false });
    expect(saved.ok).toBe(true);
    expect(JSON.parse(readFileSync(configFile(), 'utf8'))).toEqual({ ...newer, memoryMiB: 8192, contribute: false });
    expect(readdirSync(dir).filter((name) => name !== 'config.json')).toEqual([]);
  });

  it('unknown keys in a current file survive a save', () => {
    writeFileSync(configFile(), JSON.stringify({ ...DEFAULT_SETTINGS, experimental: true }));
    expect(new SettingsStore(dir).save({ cpus: 1 }).ok).toBe(true);
    expect(JSON.parse(readFileSync(configFile(), 'utf8'))).toEqual({
      ...DEFAULT_SETTINGS,
      cpus: 1,
      experimental: true,
    });
  });
});
