import type { PolicySignals } from '@ray-agent/protocol';

/*
 * The machine's signals for the contribution policy, read from Electron's powerMonitor (idle time, power source,
 * sleep and shutdown) and a battery reader (systeminformation). Thin on purpose: what to do about them is the
 * controller's policy; this only samples, tells, and holds a shutdown while the service drains.
 * No `electron` import: the parts it uses come in as interfaces, so it is tested without Electron.
 */

/** The part of Electron's powerMonitor used here. */
export interface PowerMonitorLike {
  getSystemIdleTime(): number;
  isOnBatteryPower(): boolean;
  on(event: string, listener: (event?: { preventDefault(): void }) => void): unknown;
}

/** The part of a BrowserWindow used on Windows, where session end comes to windows, not to powerMonitor. */
export interface SessionWindowLike {
  on(event: 'query-session-end', listener: (event: SessionEndEventLike) => void): unknown;
  on(event: 'session-end', listener: (event: SessionEndEventLike) => void): unknown;
}
export interface SessionEndEventLike {
  preventDefault(): void;
  reasons: string[];
}

/** What the service must offer for the signals: the lead's AppService has these. */
export interface PowerService {
  machineSignals(signals: PolicySignals): void;
  /** Drain with the going-away deadline; resolves when drained (or when the service gives up). */
  goingAway(kind: 'suspend' | 'shutdown'): Promise<void>;
  resumed(): void;
}

export type BatteryReader = () => Promise<{ hasBattery: boolean; percent: number | null }>;

export interface PowerSignalsOptions {
  monitor: PowerMonitorLike;
  service: PowerService;
  platform: NodeJS.Platform;
  env: Record<string, string | undefined>;
  readBattery?: BatteryReader;
  /** The policy's going-away drain deadline in seconds, read when the machine goes away. */
  drainSeconds: () => number;
  /** Called once the shutdown hold ends: the app quits (its before-quit stops the agent). */
  quit: () => void;
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
  setRepeat?: (fn: () => void, ms: number) => { cancel(): void };
  log?: (line: string) => void;
}

/** How often the idle time is sampled: the time from "the person is back" to the policy seeing it. */
export const SAMPLE_MS = 2_000;
/** The battery level changes slowly, and reading it can shell out: read it this often, and on power events. */
export const BATTERY_REFRESH_MS = 60_000;
/** On top of the drain deadline, for the last heartbeat and the container stop, before the hold gives up. */
export const SHUTDOWN_MARGIN_MS = 10_000;
/**
 * On Wayland Electron may report 0 s idle for ever (electron/electron#34826). Until a reading above 0 is seen, the
 * idle time counts as 0 (in use: the safe side for the person); after this long with only zeros it is "unknown".
 */
export const WAYLAND_STUCK_MS = 10 * 60_000;

/** Every powerMonitor event that may change the policy's decision. */
export const POWER_EVENTS = [
  'suspend',
  'resume',
  'shutdown',
  'on-ac',
  'on-battery',
  'lock-screen',
  'unlock-screen',
  'user-did-become-active',
  'user-did-resign-active',
] as const;
export type PowerEvent = (typeof POWER_EVENTS)[number] | 'query-session-end' | 'session-end';

const defaultTimer = (fn: () => void, ms: number) => {
  const handle = setTimeout(fn, ms);
  handle.unref?.();
  return { cancel: () => clearTimeout(handle) };
};
const defaultRepeat = (fn: () => void, ms: number) => {
  const handle = setInterval(fn, ms);
  handle.unref?.();
  return { cancel: () => clearInterval(handle) };
};

export function isWaylandSession(env: Record<string, string | undefined>): boolean {
  return env.XDG_SESSION_TYPE?.toLowerCase() === 'wayland' || Boolean(env.WAYLAND_DISPLAY);
}

export class PowerSignals {
  readonly #o: PowerSignalsOptions;
  readonly #now: () => number;
  readonly #startedAt: number;
  readonly #listeners = new Set<(event: PowerEvent) => void>();
  #goingAway: 'suspend' | 'shutdown' | null = null;
  #battery: { percent: number | null; readAt: number } | null = null;
  #idleSeen = false;
  #holding = false;
  #repeat: { cancel(): void } | null = null;

  constructor(options: PowerSignalsOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#startedAt = this.#now();
  }

  /** Subscribes to powerMonitor and pushes signals to the service at once, on every event and every SAMPLE_MS. */
  start(): void {
    for (const name of POWER_EVENTS) this.#o.monitor.on(name, (event) => this.#onEvent(name, event));
    const repeat = this.#o.setRepeat ?? defaultRepeat;
    this.#repeat = repeat(() => this.push(), SAMPLE_MS);
    void this.#refreshBattery().then(() => this.push());
    this.push();
  }

  stop(): void {
    this.#repeat?.cancel();
    this.#repeat = null;
  }

  /** Windows sends the end of a session to top-level windows: each window the app makes is watched. */
  watchWindow(window: SessionWindowLike): void {
    if (this.#o.platform !== 'win32') return;
    // Cancelling WM_QUERYENDSESSION holds the shutdown (Windows lists the app as blocking it) while the node drains.
    window.on('query-session-end', (event) => this.#onEvent('query-session-end', event));
    // Past this point Windows ends the session whatever the app does: drain as far as the seconds left allow.
    window.on('session-end', () => this.#onEvent('session-end'));
  }

  /** A listener for every power event, after the service has been told. */
  onEvent(listener: (event: PowerEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get holdingShutdown(): boolean {
    return this.#holding;
  }

  /** The signals now (the battery level as last read). */
  current(): PolicySignals {
    const nowMs = this.#now();
    const at = new Date(nowMs);
    let onBattery: boolean | null = null;
    try {
      onBattery = this.#o.monitor.isOnBatteryPower();
    } catch {
      onBattery = null;
    }
    return {
      nowMs,
      weekday: at.getDay(),
      hour: at.getHours(),
      idleSeconds: this.#idleSeconds(nowMs),
      onBattery,
      batteryPercent: this.#battery?.percent ?? null,
      goingAway: this.#goingAway,
    };
  }

  push(): void {
    if (this.#battery && this.#now() - this.#battery.readAt >= BATTERY_REFRESH_MS) {
      // Marked as read now so a slow reader is not started again on every sample.
      this.#battery = { ...this.#battery, readAt: this.#now() };
      void this.#refreshBattery();
    }
    try {
      this.#o.service.machineSignals(this.current());
    } catch (error) {
      this.#log(`the service refused the machine's signals: ${message(error)}`);
    }
  }

  #idleSeconds(nowMs: number): number | null {
    let idle: number;
    try {
      idle = this.#o.monitor.getSystemIdleTime();
    } catch {
      return null;
    }
    if (!Number.isFinite(idle) || idle < 0) return null;
    if (idle > 0) this.#idleSeen = true;
    if (!this.#idleSeen && isWaylandSession(this.#o.env) && nowMs - this.#startedAt >= WAYLAND_STUCK_MS) return null;
    return idle;
  }

  async #refreshBattery(): Promise<void> {
    const read = this.#o.readBattery;
    if (!read) return;
    try {
      const battery = await read();
      const percent = battery.hasBattery && battery.percent !== null ? clampPercent(battery.percent) : null;
      this.#battery = { percent, readAt: this.#now() };
    } catch (error) {
      this.#battery = { percent: null, readAt: this.#now() };
      this.#log(`the battery level cannot be read: ${message(error)}`);
    }
  }

  #onEvent(name: PowerEvent, event?: { preventDefault(): void }): void {
    switch (name) {
      case 'suspend':
        // No OS lets an app hold a sleep: the drain request is sent at once and Ray gets what seconds remain.
        this.#goingAway = 'suspend';
        this.push();
        this.#callGoingAway('suspend');
        break;
      case 'shutdown':
      case 'query-session-end':
        this.#holdShutdown(event);
        break;
      case 'session-end':
        if (!this.#holding) this.#holdShutdown(undefined);
        break;
      case 'resume':
        this.#goingAway = null;
        try {
          this.#o.service.resumed();
        } catch (error) {
          this.#log(`resume failed: ${message(error)}`);
        }
        void this.#refreshBattery().then(() => this.push());
        this.push();
        break;
      case 'on-ac':
      case 'on-battery':
        void this.#refreshBattery().then(() => this.push());
        this.push();
        break;
      default:
        this.push();
    }
    for (const listener of this.#listeners) listener(name);
  }

  #callGoingAway(kind: 'suspend' | 'shutdown'): Promise<void> {
    try {
      return this.#o.service.goingAway(kind).catch((error) => this.#log(`drain on ${kind} failed: ${message(error)}`));
    } catch (error) {
      this.#log(`drain on ${kind} failed: ${message(error)}`);
      return Promise.resolve();
    }
  }

  /** Holds the shutdown (preventDefault) until the service has drained, bounded, then quits. */
  #holdShutdown(event: { preventDefault(): void } | undefined): void {
    if (this.#holding) {
      // Windows asks every top-level window, and may ask again: keep saying "not yet" while the drain runs.
      event?.preventDefault();
      return;
    }
    event?.preventDefault();
    this.#holding = true;
    this.#goingAway = 'shutdown';
    this.push();
    const boundMs = Math.max(0, this.#o.drainSeconds()) * 1000 + SHUTDOWN_MARGIN_MS;
    let done = false;
    const finish = (why: string) => {
      if (done) return;
      done = true;
      timer.cancel();
      this.#log(`shutdown: ${why}; quitting`);
      this.#o.quit();
    };
    const timer = (this.#o.setTimer ?? defaultTimer)(
      () => finish(`the drain did not finish in ${Math.round(boundMs / 1000)} s`),
      boundMs,
    );
    void this.#callGoingAway('shutdown').then(() => finish('drained'));
  }

  #log(line: string): void {
    (this.#o.log ?? ((text: string) => console.warn(`Ray Agent: ${text}`)))(line);
  }
}

function clampPercent(value: number): number | null {
  if (!Number.isFinite(value)) return null;
  return Math.min(100, Math.max(0, Math.round(value)));
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
