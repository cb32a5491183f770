/**
 * A stand-in for the `electron` module, for driving electron/src/main.ts where Electron cannot run. It records what
 * main does (windows, tray, IPC handlers, quit) on globalThis.__electronStandIn so a test can assert on it and play
 * Electron's part (ready, events, menu clicks). Only the calls main.ts makes exist here.
 */
type Listener = (...args: unknown[]) => unknown;

export class Emitter {
  readonly #listeners = new Map<string, Listener[]>();
  on(name: string, listener: Listener): this {
    this.#listeners.set(name, [...(this.#listeners.get(name) ?? []), listener]);
    return this;
  }
  once(name: string, listener: Listener): this {
    const wrapped: Listener = (...args) => {
      this.#listeners.set(
        name,
        (this.#listeners.get(name) ?? []).filter((l) => l !== wrapped),
      );
      return listener(...args);
    };
    return this.on(name, wrapped);
  }
  emit(name: string, ...args: unknown[]): void {
    for (const listener of this.#listeners.get(name) ?? []) listener(...args);
  }
  listenerCount(name: string): number {
    return this.#listeners.get(name)?.length ?? 0;
  }
}

export interface StandInEvent {
  defaultPrevented: boolean;
  preventDefault(): void;
}
export function standInEvent(extra: Record<string, unknown> = {}): StandInEvent {
  return {
    defaultPrevented: false,
    preventDefault() {
      this.defaultPrevented = true;
    },
    ...extra,
  };
}

class WebContents extends Emitter {
  sent: Array<[string, unknown]> = [];
  windowOpenHandler: ((details: { url: string }) => { action: string }) | null = null;
  send(channel: string, payload: unknown): void {
    this.sent.push([channel, payload]);
  }
  setWindowOpenHandler(handler: (details: { url: string }) => { action: string }): void {
    this.windowOpenHandler = handler;
  }
}

export class BrowserWindow extends Emitter {
  readonly options: Record<string, unknown>;
  readonly webContents = new WebContents();
  url: string | null = null;
  visible = false;
  destroyed = false;
  focused = 0;
  constructor(options: Record<string, unknown>) {
    super();
    this.options = options;
    record.windows.push(this);
    app.emit('web-contents-created', standInEvent(), this.webContents);
  }
  async loadURL(url: string): Promise<void> {
    this.url = url;
  }
  show(): void {
    this.visible = true;
  }
  hide(): void {
    this.visible = false;
  }
  focus(): void {
    this.focused++;
  }
  isVisible(): boolean {
    return this.visible;
  }
  isMinimized(): boolean {
    return false;
  }
  restore(): void {}
  isDestroyed(): boolean {
    return this.destroyed;
  }
  /** What a click on the window's close button does. */
  close(): void {
    const event = standInEvent();
    this.emit('close', event);
    if (event.defaultPrevented) return;
    this.destroyed = true;
    this.emit('closed');
  }
}

class App extends Emitter {
  isPackaged = false;
  #ready = false;
  #readyWaiters: Array<() => void> = [];
  requestSingleInstanceLock(): boolean {
    return record.lockAvailable;
  }
  whenReady(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#ready) resolve();
      else this.#readyWaiters.push(resolve);
    });
  }
  /** The test plays Electron: the app becomes ready. */
  becomeReady(): void {
    this.#ready = true;
    for (const resolve of this.#readyWaiters.splice(0)) resolve();
  }
  isReady(): boolean {
    return this.#ready;
  }
  getPath(name: string): string {
    const path = record.paths[name];
    if (!path) throw new Error(`stand-in has no path ${name}`);
    return path;
  }
  setPath(name: string, value: string): void {
    record.paths[name] = value;
  }
  setAppUserModelId(): void {}
  getLoginItemSettings() {
    return { wasOpenedAtLogin: false };
  }
  setLoginItemSettings(settings: unknown): void {
    record.loginItems.push(settings);
  }
  quit(): void {
    record.quitCalls++;
    const event = standInEvent();
    this.emit('before-quit', event);
    if (!event.defaultPrevented) record.exitCode ??= 0;
  }
  exit(code: number): void {
    record.exitCode = code;
  }
}

export class Tray extends Emitter {
  image: { path: string };
  tooltip = '';
  menu: { template: Array<Record<string, unknown>> } | null = null;
  destroyed = false;
  constructor(image: { path: string }) {
    super();
    this.image = image;
    record.trays.push(this);
  }
  setImage(image: { path: string }): void {
    this.image = image;
  }
  setToolTip(text: string): void {
    this.tooltip = text;
  }
  setContextMenu(menu: { template: Array<Record<string, unknown>> }): void {
    this.menu = menu;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

export const Menu = {
  buildFromTemplate(template: Array<Record<string, unknown>>) {
    return { template };
  },
};

export const nativeImage = {
  createFromPath(path: string) {
    return { path, setTemplateImage() {} };
  },
};

export const ipcMain = {
  handle(channel: string, listener: Listener): void {
    record.handlers.set(channel, listener);
  },
};

export const session = {
  defaultSession: {
    setPermissionRequestHandler(handler: Listener) {
      record.permissionRequestHandler = handler;
    },
    setPermissionCheckHandler(handler: Listener) {
      record.permissionCheckHandler = handler;
    },
  },
};

/** Like Linux without a keyring: Chromium's basic_text backend. */
export const safeStorage = {
  isEncryptionAvailable: () => true,
  getSelectedStorageBackend: () => 'basic_text',
  encryptString: (text: string) => Buffer.from(text),
  decryptString: (buf: Buffer) => buf.toString(),
};

export class Notification {
  static isSupported(): boolean {
    return record.notificationsSupported;
  }
  readonly options: { title: string; body: string };
  constructor(options: { title: string; body: string }) {
    this.options = options;
  }
  show(): void {
    record.notifications.push(this.options);
  }
}

/** powerMonitor: the test sets the idle time and power source, and emits its events as the OS would. */
class PowerMonitor extends Emitter {
  idleSeconds = 0;
  onBattery = false;
  getSystemIdleTime(): number {
    return this.idleSeconds;
  }
  isOnBatteryPower(): boolean {
    return this.onBattery;
  }
}
export const powerMonitor = new PowerMonitor();

export const app = new App();

export const record = {
  lockAvailable: true,
  paths: {} as Record<string, string>,
  windows: [] as BrowserWindow[],
  trays: [] as Tray[],
  handlers: new Map<string, Listener>(),
  loginItems: [] as unknown[],
  quitCalls: 0,
  exitCode: null as number | null,
  permissionRequestHandler: null as Listener | null,
  permissionCheckHandler: null as Listener | null,
  notificationsSupported: false,
  notifications: [] as Array<{ title: string; body: string }>,
  app,
  powerMonitor,
};

const seed = (globalThis as { __electronStandInSeed?: Partial<typeof record> }).__electronStandInSeed;
Object.assign(record, seed ?? {});
(globalThis as { __electronStandIn?: typeof record }).__electronStandIn = record;
