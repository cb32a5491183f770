import type { HistoryDocument } from './history.js';
import type { StopMode } from './policy.js';
import type { Settings, SettingsErrors, SettingsPatch } from './settings.js';
import type { OfferableLimits, PullProgress, StatusView } from './view-model.js';

/**
 * The one IPC contract between the window (renderer) and the main process. The preload exposes exactly these
 * calls as `window.rayAgent`; the main process validates every payload with the zod schemas before acting.
 */
export type SaveResult = { ok: true; settings: Settings } | { ok: false; errors: SettingsErrors };

/** What "Leave this cluster" removed, and what it could not (empty on a clean run). */
export interface LeaveReport {
  deregistered: boolean;
  removed: string[];
  leftovers: string[];
}

export interface TokenState {
  stored: boolean;
  /** Why a token cannot be stored here (no secure storage), or null. */
  unavailableReason: string | null;
}

/** renderer -> main, request/response (ipcRenderer.invoke / ipcMain.handle). */
export interface InvokeChannels {
  'settings:get': () => Settings;
  'settings:save': (patch: SettingsPatch) => SaveResult;
  'token:get-state': () => TokenState;
  'token:set': (token: string) => { ok: true } | { ok: false; error: string };
  /** confirmReplace: the agent container was changed outside the app; replacing it needs the person's yes. */
  'contribute:set': (on: boolean) => { ok: true } | { ok: false; error: string; confirmReplace?: boolean };
  /** The person confirmed replacing a container that was changed outside the app. */
  'container:replace': () => { ok: true } | { ok: false; error: string };
  'status:get': () => StatusView;
  'limits:get': () => OfferableLimits;
  'logs:tail': (lines: number) => string;
  'playground:start': () => { ok: true } | { ok: false; error: string };
  /** The tray's "Pause after current tasks" and "Stop now": contributing stops (and stays off until turned on). */
  'contribute:stop': (mode: StopMode) => { ok: true } | { ok: false; error: string };
  'history:get': () => HistoryDocument;
  /** Drain, deregister from the manager, remove containers, image, volumes, the token and the settings. */
  'cluster:leave': () => { ok: true; report: LeaveReport } | { ok: false; error: string };
}

/** main -> renderer events (webContents.send / ipcRenderer.on). */
export interface EventChannels {
  'status:changed': StatusView;
  'pull:progress': PullProgress;
  'logs:data': string;
  /** A notice for the person, e.g. "your settings file was corrupt and was reset; the old file is at …". */
  notice: string;
}

export type InvokeChannel = keyof InvokeChannels;
export type EventChannel = keyof EventChannels;

export const INVOKE_CHANNELS: readonly InvokeChannel[] = [
  'settings:get',
  'settings:save',
  'token:get-state',
  'token:set',
  'contribute:set',
  'container:replace',
  'status:get',
  'limits:get',
  'logs:tail',
  'playground:start',
  'contribute:stop',
  'history:get',
  'cluster:leave',
];
export const EVENT_CHANNELS: readonly EventChannel[] = ['status:changed', 'pull:progress', 'logs:data', 'notice'];

/** The API the preload exposes on `window.rayAgent` (and a test bridge implements over the real controller). */
export type RayAgentApi = {
  [C in InvokeChannel]: (...args: Parameters<InvokeChannels[C]>) => Promise<ReturnType<InvokeChannels[C]>>;
} & {
  on<E extends EventChannel>(channel: E, listener: (payload: EventChannels[E]) => void): () => void;
};
