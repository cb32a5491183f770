import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { PolicySignals, Settings, StatusView } from '@ray-agent/protocol';
import { build } from 'esbuild';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { trayIconFile } from '../src/tray-icons.js';
import type { record as StandInRecord } from './support/electron-stand-in.js';

/**
 * electron/src/main.ts bundled as build.mjs bundles it, but with stand-ins for Electron (which cannot run here) and
 * for the app service (which drives Docker). Checks the wiring: single instance, window hardening, IPC registration
 * and sender checks, tray updates, close and quit behaviour.
 */
const here = fileURLToPath(new URL('.', import.meta.url));
const work = mkdtempSync(path.join(tmpdir(), 'main-wiring-'));
const bundle = path.join(work, 'bundle.cjs');
const require = createRequire(import.meta.url);
let runs = 0;

type Record = typeof StandInRecord;
interface ServiceStandIn {
  options: { settingsDir: string; vault: unknown; notify: (text: string) => void };
  calls: Array<[string, unknown[]]>;
  pushStatus(view: StatusView): void;
  finishShutdown(): void;
  finishDrain(): void;
  signals: PolicySignals[];
  setSettings(next: Partial<Settings>): void;
}
const globals = globalThis as {
  __electronStandIn?: Record;
  __electronStandInSeed?: Partial<Record>;
  __appServiceStandIn?: ServiceStandIn;
};

const savedEnv = { ...process.env };

beforeAll(async () => {
  await build({
    entryPoints: [path.join(here, '../src/main.ts')],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'error',
    alias: {
      electron: path.join(here, 'support/electron-stand-in.ts'),
      '@ray-agent/controller/app-service': path.join(here, 'support/app-service-stand-in.ts'),
    },
  });
}, 60_000);

afterEach(() => {
  process.env = { ...savedEnv };
  delete globals.__electronStandIn;
  delete globals.__electronStandInSeed;
  delete globals.__appServiceStandIn;
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Loads a fresh copy of the bundle as if it were electron/dist/main.cjs, so module state starts clean. */
function launch(options: { lockAvailable?: boolean; tray?: boolean } = {}) {
  const root = path.join(work, `run-${++runs}`);
  const dist = path.join(root, 'electron', 'dist');
  mkdirSync(dist, { recursive: true });
  copyFileSync(bundle, path.join(dist, 'main.cjs'));
  process.env.RAY_AGENT_TRAY = options.tray === false ? '0' : '1';
  // Autostart files and user data go to the test's own folders, never the real home.
  process.env.XDG_CONFIG_HOME = path.join(root, 'config');
  globals.__electronStandInSeed = {
    lockAvailable: options.lockAvailable ?? true,
    paths: { userData: path.join(root, 'userData') },
  };
  require(path.join(dist, 'main.cjs'));
  const electron = globals.__electronStandIn;
  if (!electron) throw new Error('the Electron stand-in was not loaded');
  return {
    electron,
    appPage: pathToFileURL(path.join(root, 'renderer', 'dist', 'index.html')).href,
    preload: path.join(dist, 'preload.cjs'),
    assets: path.join(root, 'electron', 'assets'),
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

async function started(options: { tray?: boolean } = {}) {
  const run = launch(options);
  run.electron.app.becomeReady();
  await settle();
  const service = globals.__appServiceStandIn;
  if (!service) throw new Error('main did not create the app service');
  const window = run.electron.windows[0];
  if (!window) throw new Error('main opened no window');
  return { ...run, service, window };
}

const view = (overrides: Partial<StatusView>): StatusView => ({
  phase: 'contributing',
  headline: 'Contributing to ray-head.lan',
  detail: null,
  contributing: true,
  registration: { state: 'registered', providerId: 'prv-1' },
  heartbeat: { healthy: true, lastSuccessAt: null, failingSince: null, consecutiveFailures: 0 },
  runningTasks: 2,
  limits: null,
  agentVersion: '0.1.0',
  updatedAt: '2025-01-01T00:00:01.000Z',
  ...overrides,
});

describe('main.ts wiring, with stand-ins for Electron and the app service', () => {
  it('a second instance quits at once and starts nothing', async () => {
    const { electron } = launch({ lockAvailable: false });
    electron.app.becomeReady();
    await settle();
    expect(electron.quitCalls).toBe(1);
    expect(electron.windows).toEqual([]);
    expect(electron.handlers.size).toBe(0);
    expect(globals.__appServiceStandIn).toBeUndefined();
  });

  it('opens one hardened window on the app page; a second launch focuses it', async () => {
    const { electron, window, appPage, preload, service } = await started();
    expect(service.options.settingsDir).toBe(electron.paths.userData);
    expect(window.options.webPreferences).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      preload,
    });
    expect(window.url).toBe(appPage);
    window.emit('ready-to-show');
    expect(window.visible).toBe(true);
    electron.app.emit('second-instance');
    expect(electron.windows).toHaveLength(1);
    expect(window.focused).toBeGreaterThan(0);
  });

  it('denies permissions, navigation away from the app page and new windows', async () => {
    const { electron, window, appPage } = await started();
    let granted: boolean | null = null;
    electron.permissionRequestHandler?.(null, 'media', (answer: boolean) => {
      granted = answer;
    });
    expect(granted).toBe(false);
    expect(electron.permissionCheckHandler?.(null, 'clipboard-read')).toBe(false);
    const navigate = (url: string) => {
      const event = {
        defaultPrevented: false,
        preventDefault() {
          this.defaultPrevented = true;
        },
      };
      window.webContents.emit('will-navigate', event, url);
      return event.defaultPrevented;
    };
    expect(navigate('https://evil.example/')).toBe(true);
    expect(navigate('file:///etc/passwd')).toBe(true);
    expect(navigate(`${appPage}#settings`)).toBe(false);
    expect(window.webContents.windowOpenHandler?.({ url: appPage })).toEqual({ action: 'deny' });
  });

  it('registers the protocol channels and answers only the app page', async () => {
    const { electron, appPage, service } = await started();
    expect([...electron.handlers.keys()].sort()).toEqual(
      [
        'contribute:set',
        'contribute:stop',
        'container:replace',
        'history:get',
        'cluster:leave',
        'limits:get',
        'logs:tail',
        'playground:start',
        'settings:get',
        'settings:save',
        'status:get',
        'token:get-state',
        'token:set',
      ].sort(),
    );
    const handler = electron.handlers.get('logs:tail');
    expect(await handler?.({ senderFrame: { url: appPage } }, 10)).toEqual({ result: '' });
    expect(await handler?.({ senderFrame: { url: 'https://evil.example/' } }, 10)).toEqual({
      error: { message: 'Refused logs:tail: the request did not come from the Ray Agent window.' },
    });
    expect(service.calls.filter(([name]) => name === 'logs:tail')).toEqual([['logs:tail', [10]]]);
  });

  it('the token goes through the vault over safeStorage, and a basic_text keyring is refused', async () => {
    const { electron, appPage } = await started();
    const handler = electron.handlers.get('token:set');
    const answer = (await handler?.({ senderFrame: { url: appPage } }, 'rat_0123456789abcdef')) as {
      result: { ok: boolean; error?: string };
    };
    expect(answer.result.ok).toBe(false);
    expect(answer.result.error).toContain('No secure storage (OS keychain) is available');
  });

  it('the tray follows status, and its contribute item calls through', async () => {
    const { electron, service, assets, window } = await started();
    const tray = electron.trays[0];
    if (!tray) throw new Error('no tray');
    expect(tray.image.path).toBe(path.join(assets, trayIconFile('off', process.platform)));
    window.webContents.emit('did-finish-load');
    service.pushStatus(view({}));
    expect(tray.image.path).toBe(path.join(assets, trayIconFile('contributing', process.platform)));
    expect(tray.tooltip).toBe('Ray Agent: Contributing to ray-head.lan');
    const labels = tray.menu?.template.map((item) => item.label);
    expect(labels).toEqual(expect.arrayContaining(['Registered as prv-1', '2 tasks running', 'Quit Ray Agent']));
    expect(window.webContents.sent).toContainEqual(['status:changed', view({})]);

    const contribute = tray.menu?.template.find((item) => item.id === 'contribute') as {
      click: (item: { checked: boolean }) => void;
    };
    contribute.click({ checked: true });
    await settle();
    expect(service.calls).toContainEqual(['contribute:set', [true]]);
    expect(tray.menu?.template.find((item) => item.id === 'contribute')?.checked).toBe(true);
  });

  it('notices raised before the page loads are delivered once it has', async () => {
    const { window, service } = await started();
    service.options.notify('Your settings file was unreadable and was reset to defaults.');
    expect(window.webContents.sent).toEqual([]);
    window.webContents.emit('did-finish-load');
    expect(window.webContents.sent).toEqual([
      ['notice', 'Your settings file was unreadable and was reset to defaults.'],
    ]);
  });

  it('with a tray, closing the window hides it; quitting waits for the service to shut down', async () => {
    const { electron, window, service } = await started();
    window.emit('ready-to-show');
    window.close();
    expect(window.visible).toBe(false);
    expect(window.destroyed).toBe(false);
    expect(electron.quitCalls).toBe(0);

    electron.app.quit();
    await settle();
    expect(service.calls).toContainEqual(['shutdown', []]);
    expect(electron.exitCode).toBeNull();
    service.finishShutdown();
    await settle();
    expect(electron.exitCode).toBe(0);
    expect(electron.trays[0]?.destroyed).toBe(true);
  });

  it('without a tray, closing the window quits (after the service shuts down)', async () => {
    const { electron, window, service } = await started({ tray: false });
    expect(electron.trays).toEqual([]);
    window.close();
    expect(electron.quitCalls).toBe(1);
    await settle();
    expect(service.calls).toContainEqual(['shutdown', []]);
    service.finishShutdown();
    await settle();
    expect(electron.exitCode).toBe(0);
  });

  it.runIf(process.platform === 'linux')(
    'start at login is applied from the settings (an XDG autostart entry on Linux)',
    async () => {
      const { electron, appPage } = await started();
      const save = electron.handlers.get('settings:save');
      await save?.({ senderFrame: { url: appPage } }, { startAtLogin: true });
      const entry = readFileSync(
        path.join(process.env.XDG_CONFIG_HOME ?? '', 'autostart', 'io.ray-agent.tray.desktop'),
        'utf8',
      );
      expect(entry).toContain(`Exec=${process.execPath} --hidden`);
    },
  );

  it('power events reach the service at once: signals on every event, suspend drains, resume rejoins', async () => {
    const { electron, service } = await started();
    const pm = electron.powerMonitor;
    expect(service.signals.length).toBeGreaterThan(0);
    pm.idleSeconds = 600;
    pm.onBattery = true;
    const before = service.signals.length;
    pm.emit('on-battery');
    expect(service.signals.length).toBeGreaterThan(before);
    expect(service.signals.at(-1)).toMatchObject({ idleSeconds: 600, onBattery: true, goingAway: null });
    pm.emit('suspend');
    expect(service.calls).toContainEqual(['goingAway', ['suspend']]);
    expect(service.signals.at(-1)?.goingAway).toBe('suspend');
    pm.emit('resume');
    expect(service.calls).toContainEqual(['resumed', []]);
    expect(service.signals.at(-1)?.goingAway).toBeNull();
    expect(electron.quitCalls).toBe(0);
  });

  it('shutdown is held (preventDefault) until the service has drained, then the app quits and stops', async () => {
    const { electron, service } = await started();
    const event = {
      defaultPrevented: false,
      preventDefault() {
        this.defaultPrevented = true;
      },
    };
    electron.powerMonitor.emit('shutdown', event);
    expect(event.defaultPrevented).toBe(true);
    expect(service.calls).toContainEqual(['goingAway', ['shutdown']]);
    await settle();
    expect(electron.quitCalls).toBe(0);
    service.finishDrain();
    await settle();
    expect(electron.quitCalls).toBe(1);
    expect(service.calls).toContainEqual(['shutdown', []]);
    service.finishShutdown();
    await settle();
    expect(electron.exitCode).toBe(0);
  });

  it('the tray stops: "Pause after current tasks" and "Stop now" call contribute:stop', async () => {
    const { electron, service, window } = await started();
    window.webContents.emit('did-finish-load');
    service.pushStatus(view({}));
    const item = (id: string) =>
      electron.trays[0]?.menu?.template.find((entry) => entry.id === id) as { enabled: boolean; click: () => void };
    expect(item('pause-after-current').enabled).toBe(true);
    item('pause-after-current').click();
    item('stop-now').click();
    await settle();
    expect(service.calls).toContainEqual(['contribute:stop', ['after-current']]);
    expect(service.calls).toContainEqual(['contribute:stop', ['now']]);
  });

  it('the window calls the new channels: stop, history and leave', async () => {
    const { electron, appPage, service } = await started();
    const own = { senderFrame: { url: appPage } };
    expect(await electron.handlers.get('contribute:stop')?.(own, 'now')).toEqual({ result: { ok: true } });
    expect(await electron.handlers.get('contribute:stop')?.(own, 'soon')).toMatchObject({
      error: { message: expect.stringMatching(/^Invalid arguments for contribute:stop/) },
    });
    expect(await electron.handlers.get('history:get')?.(own)).toEqual({ result: { version: 1, hours: [] } });
    expect(await electron.handlers.get('cluster:leave')?.(own)).toEqual({
      result: { ok: true, report: { deregistered: true, removed: ['container ray-agent'], leftovers: [] } },
    });
    expect(service.calls.filter(([name]) => name === 'contribute:stop')).toEqual([['contribute:stop', ['now']]]);
  });

  it('desktop notifications only for what needs the person, and none when silenced in the settings', async () => {
    const run = launch();
    run.electron.notificationsSupported = true;
    run.electron.app.becomeReady();
    await settle();
    const service = globals.__appServiceStandIn;
    if (!service) throw new Error('no service');
    service.pushStatus(view({}));
    service.pushStatus(view({ phase: 'draining', headline: 'Stopping' }));
    expect(run.electron.notifications).toEqual([]);
    service.pushStatus(
      view({ phase: 'crash-looping', headline: 'The agent keeps restarting', detail: 'Out of memory.' }),
    );
    expect(run.electron.notifications).toEqual([
      { title: 'Ray Agent', body: 'The agent keeps restarting. Out of memory.' },
    ]);

    // Silenced: the settings say no, and the next condition shows nothing.
    service.setSettings({ notifications: false });
    await run.electron.handlers.get('settings:save')?.({ senderFrame: { url: run.appPage } }, { notifications: false });
    service.pushStatus(view({ phase: 'error', registration: { state: 'rejected', providerId: null } }));
    expect(run.electron.notifications).toHaveLength(1);
  });
});
