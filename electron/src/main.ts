import { homedir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Notifier } from '@ray-agent/controller/app/notifications';
import { createAppService } from '@ray-agent/controller/app-service';
import { type SecretCodec, TokenVault } from '@ray-agent/controller/token-vault';
import { trayLikelyVisible, windowBehaviour } from '@ray-agent/controller/tray-menu';
import {
  type EventChannel,
  type EventChannels,
  POLICY_LIMITS,
  type Settings,
  type StatusView,
  type StopMode,
} from '@ray-agent/protocol';
import { app, type BrowserWindow, ipcMain, Notification, powerMonitor, safeStorage, session } from 'electron';
import { autoUpdater } from 'electron-updater';
import { battery } from 'systeminformation';
import { isAppPage } from './app-url.js';
import { type RayAgentService, registerIpc } from './ipc-main.js';
import { autostartDir, setLinuxAutostart } from './linux-autostart.js';
import { PowerSignals } from './power-signals.js';
import { TrayController } from './tray.js';
import { createMainWindow, denyAllPermissions, lockDownContents } from './window.js';

/*
 * The Electron shell: wiring only. Container control, settings, token storage and the tray's contents live in
 * @ray-agent/controller, which is tested without Electron.
 *
 * Settings: one code path. The app-service reads and writes `<userData>/config.json` through SettingsStore (built on
 * `conf`, the library electron-store is built on: same file name, same JSON, same atomic writes), which is exactly
 * the file the `ray-agent` CLI uses; electron-store itself is not needed.
 */

// Bundled to CommonJS by build.mjs, so __dirname is electron/dist at run time (inside app.asar when packaged).
const ASSETS = path.join(__dirname, '..', 'assets');
const PRELOAD = path.join(__dirname, 'preload.cjs');
const APP_PAGE = pathToFileURL(path.join(__dirname, '..', '..', 'renderer', 'dist', 'index.html')).href;
const LAUNCHED_HIDDEN_FLAG = '--hidden';
/** Set by the packaged-app tests (e2e-electron/): a separate profile and a read-only view of the tray. */
const E2E = process.env.RAY_AGENT_E2E === '1';

if (process.env.RAY_AGENT_USER_DATA) app.setPath('userData', process.env.RAY_AGENT_USER_DATA);
if (process.platform === 'win32') app.setAppUserModelId('io.ray-agent.tray');

type AppService = ReturnType<typeof createAppService>;

let service: AppService | null = null;
let window: BrowserWindow | null = null;
let tray: TrayController | null = null;
let power: PowerSignals | null = null;
/** The saved settings as last read; the notifier and the shutdown hold read them. */
let currentSettings: Settings | null = null;
let pageLoaded = false;
/** Decided once the tray is (or is not) up; until then there is no tray, so closing quits. */
let closeQuits = true;
let quitting = false;
let shutdownDone = false;
const pendingNotices: string[] = [];

// One app per user: a second launch (e.g. from the start menu while the tray app runs) just shows the window.
if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => showWindow());
  app.on('activate', () => showWindow());
  app.on('web-contents-created', (_event, contents) => lockDownContents(contents, APP_PAGE));
  app.on('window-all-closed', () => {
    // Without this listener Electron quits; with a tray the app lives on. closeQuits is handled on 'close'.
  });
  app.on('before-quit', (event) => {
    if (shutdownDone) return;
    // Stopping the agent drains running Ray tasks (seconds): hold the quit until the service is done.
    event.preventDefault();
    if (quitting) return;
    quitting = true;
    void (async () => {
      try {
        await service?.shutdown();
      } catch (error) {
        console.error('Ray Agent: shutdown failed:', error);
      } finally {
        shutdownDone = true;
        power?.stop();
        tray?.destroy();
        app.exit(0);
      }
    })();
  });
  app.whenReady().then(start, fatal);
}

async function start(): Promise<void> {
  denyAllPermissions(session.defaultSession);
  const userData = app.getPath('userData');
  const vault = new TokenVault(userData, safeStorageCodec());
  const appService = createAppService({ settingsDir: userData, vault, notify });
  service = appService;
  // Desktop notifications only for what the person must act on; the rules live in the controller.
  const notifier = new Notifier({
    enabled: () => currentSettings?.notifications ?? true,
    show: (title, body) => {
      if (Notification.isSupported()) new Notification({ title, body }).show();
    },
  });

  // createAppService hands back a running service (watching Docker). Subscribe before the first reads so no change
  // between them is missed; the tray is drawn once both are known.
  let settings: Settings | null = null;
  let view: StatusView | null = null;
  const refreshTray = () => {
    currentSettings = settings;
    if (settings && view) tray?.update(view, settings);
  };
  appService.onStatus((next: StatusView) => {
    view = next;
    refreshTray();
    notifier.observe(next);
    send('status:changed', next);
  });
  appService.onPull((progress) => send('pull:progress', progress));
  appService.onLogs((chunk) => send('logs:data', chunk));
  settings = await appService['settings:get']();
  const initialView = await appService['status:get']();
  view ??= initialView;

  // The window's calls, plus what the shell itself must do when settings change (login item, tray checkbox).
  const shellService: RayAgentService = {
    'settings:get': () => appService['settings:get'](),
    'settings:save': async (patch) => {
      const saved = await appService['settings:save'](patch);
      if (saved.ok) {
        settings = saved.settings;
        applyLoginItem(settings.startAtLogin);
        refreshTray();
      }
      return saved;
    },
    'token:get-state': () => appService['token:get-state'](),
    'token:set': (token) => appService['token:set'](token),
    'contribute:set': async (on) => {
      const answer = await appService['contribute:set'](on);
      settings = await appService['settings:get']();
      refreshTray();
      return answer;
    },
    'container:replace': async () => {
      const answer = await appService['container:replace']();
      refreshTray();
      return answer;
    },
    'status:get': () => appService['status:get'](),
    'limits:get': () => appService['limits:get'](),
    'logs:tail': (lines) => appService['logs:tail'](lines),
    'playground:start': () => appService['playground:start'](),
    'contribute:stop': async (mode) => {
      const answer = await appService['contribute:stop'](mode);
      settings = await appService['settings:get']();
      refreshTray();
      return answer;
    },
    'history:get': () => appService['history:get'](),
    'cluster:leave': async () => {
      const answer = await appService['cluster:leave']();
      // Leaving removes the settings too: the tray and the login item follow what is left.
      settings = await appService['settings:get']();
      applyLoginItem(settings.startAtLogin);
      refreshTray();
      return answer;
    },
  };
  registerIpc(ipcMain, shellService, (event) => isAppPage(event.senderFrame?.url, APP_PAGE));

  if (trayLikelyVisible(process.platform, process.env)) {
    try {
      tray = new TrayController(ASSETS, {
        setContribute: (on) =>
          void shellService['contribute:set'](on).then((answer) => {
            if (!answer.ok) notify(answer.error);
          }, reportError),
        stop: (mode: StopMode) =>
          void shellService['contribute:stop'](mode).then((answer) => {
            if (!answer.ok) notify(answer.error);
          }, reportError),
        openWindow: showWindow,
        quit: () => app.quit(),
      });
    } catch (error) {
      console.warn('Ray Agent: no tray icon, closing the window will quit:', error);
    }
  }
  closeQuits = windowBehaviour(process.platform, tray !== null).closeQuits;

  applyLoginItem(settings.startAtLogin);
  refreshTray();

  // Idle time, power source, sleep and shutdown feed the policy; a shutdown is held while the node drains.
  power = new PowerSignals({
    monitor: powerMonitor,
    service: {
      machineSignals: (signals) => appService.machineSignals(signals),
      goingAway: (kind) => appService.goingAway(kind),
      resumed: () => appService.resumed(),
    },
    platform: process.platform,
    env: process.env,
    readBattery: async () => {
      const state = await battery();
      return { hasBattery: state.hasBattery, percent: state.hasBattery ? state.percent : null };
    },
    drainSeconds: () => currentSettings?.policy.goingAwayDrainSeconds ?? POLICY_LIMITS.goingAwayDrainSeconds.default,
    quit: () => app.quit(),
  });
  power.start();
  if (window) power.watchWindow(window);
  if (E2E) Object.assign(globalThis, { rayAgentE2E: { trayModel: () => tray?.model ?? null, closeQuits } });

  // Started at login with a tray: stay in the tray. Otherwise (or with no tray to reach it from) show the window.
  const atLogin = process.argv.includes(LAUNCHED_HIDDEN_FLAG) || app.getLoginItemSettings().wasOpenedAtLogin;
  if (!(atLogin && tray)) showWindow();

  if (app.isPackaged && !E2E) autoUpdater.checkForUpdatesAndNotify().catch(reportError);
}

function showWindow(): void {
  if (!app.isReady()) return;
  if (window && !window.isDestroyed()) {
    if (window.isMinimized()) window.restore();
    window.show();
    window.focus();
    return;
  }
  pageLoaded = false;
  window = createMainWindow({
    preload: PRELOAD,
    appPage: APP_PAGE,
    icon: path.join(ASSETS, 'icon.png'),
    closeQuits: () => closeQuits,
    quit: () => app.quit(),
    isQuitting: () => quitting,
  });
  power?.watchWindow(window);
  window.webContents.on('did-start-loading', () => {
    pageLoaded = false;
  });
  window.webContents.on('did-finish-load', () => {
    pageLoaded = true;
    // Notices raised before the page could listen (e.g. a reset settings file at start) are delivered now.
    for (const text of pendingNotices.splice(0)) send('notice', text);
  });
  window.on('closed', () => {
    window = null;
  });
}

function send<E extends EventChannel>(channel: E, payload: EventChannels[E]): void {
  if (window && !window.isDestroyed() && pageLoaded) window.webContents.send(channel, payload);
}

function notify(text: string): void {
  if (window && !window.isDestroyed() && pageLoaded) send('notice', text);
  else pendingNotices.push(text);
  const silenced = currentSettings?.notifications === false;
  if (!silenced && !window?.isVisible() && Notification.isSupported())
    new Notification({ title: 'Ray Agent', body: text }).show();
}

function applyLoginItem(openAtLogin: boolean): void {
  try {
    if (process.platform === 'linux') {
      // An AppImage must be started through its own file, not the extracted binary that runs now.
      const executable = process.env.APPIMAGE ?? process.execPath;
      setLinuxAutostart(openAtLogin, autostartDir(process.env, homedir()), [executable, LAUNCHED_HIDDEN_FLAG]);
    } else {
      app.setLoginItemSettings({ openAtLogin, args: [LAUNCHED_HIDDEN_FLAG] });
    }
  } catch (error) {
    reportError(error);
  }
}

/** Electron's safeStorage as the vault's codec; on Linux the backend says whether a real keyring is behind it. */
function safeStorageCodec(): SecretCodec {
  return {
    isEncryptionAvailable: () => safeStorage.isEncryptionAvailable(),
    backend: () => {
      if (process.platform === 'linux') return safeStorage.getSelectedStorageBackend();
      return process.platform === 'darwin' ? 'keychain' : 'dpapi';
    },
    encrypt: (text) => safeStorage.encryptString(text),
    decrypt: (buf) => safeStorage.decryptString(buf),
  };
}

function reportError(error: unknown): void {
  console.error('Ray Agent:', error instanceof Error ? error.message : error);
}

function fatal(error: unknown): void {
  console.error('Ray Agent could not start:', error);
  app.exit(1);
}
