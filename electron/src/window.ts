import { BrowserWindow, type Session, type WebContents } from 'electron';
import { isAppPage } from './app-url.js';

export interface MainWindowOptions {
  preload: string;
  appPage: string;
  icon?: string;
  /** Closing quits when there is no tray to bring the window back (see windowBehaviour). */
  closeQuits: () => boolean;
  quit: () => void;
  isQuitting: () => boolean;
}

/**
 * Electron's security checklist: no Node in the page, isolated and sandboxed preload, web security on. The page's
 * CSP is its <meta> tag: pages load from file://, where there are no response headers for
 * session.webRequest.onHeadersReceived to add one to, and the meta tag is applied before any script runs.
 */
export function createMainWindow(options: MainWindowOptions): BrowserWindow {
  const window = new BrowserWindow({
    width: 880,
    height: 720,
    minWidth: 560,
    minHeight: 480,
    show: false,
    title: 'Ray Agent',
    ...(options.icon ? { icon: options.icon } : {}),
    webPreferences: {
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
      preload: options.preload,
    },
  });
  lockDownContents(window.webContents, options.appPage);
  window.once('ready-to-show', () => window.show());
  window.on('close', (event) => {
    if (options.isQuitting()) return;
    if (options.closeQuits()) {
      options.quit();
      return;
    }
    // With a tray the app keeps contributing in the background; the tray's "Open Ray Agent" brings the window back.
    event.preventDefault();
    window.hide();
  });
  void window.loadURL(options.appPage);
  return window;
}

/** No navigation away from the app page, no new windows, no webviews. */
export function lockDownContents(contents: WebContents, appPage: string): void {
  contents.on('will-navigate', (event, url) => {
    if (!isAppPage(url, appPage)) event.preventDefault();
  });
  contents.on('will-redirect', (event, url) => {
    if (!isAppPage(url, appPage)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  // The app never opens windows, and never hands a page-supplied URL to the OS (no shell.openExternal).
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
}

/** The page asks for nothing: camera, notifications, clipboard and the rest are all refused. */
export function denyAllPermissions(session: Session): void {
  session.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  session.setPermissionCheckHandler(() => false);
}
