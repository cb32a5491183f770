import {
  DEFAULT_SETTINGS,
  EnrollmentToken,
  type HistoryDocument,
  type InvokeChannel,
  type LeaveReport,
  type OfferableLimits,
  type SaveResult,
  type Settings,
  type SettingsPatch,
  type StatusView,
  type StopMode,
  type TokenState,
  validateSettings,
} from '@ray-agent/protocol';
import type { RayAgentService } from '../../electron/src/ipc-main.js';

type Answer = { ok: true } | { ok: false; error: string };
type ContributeAnswer = Answer | { ok: false; error: string; confirmReplace: true };

export const GiB = 1024 ** 3;

export function statusView(overrides: Partial<StatusView> = {}): StatusView {
  return {
    phase: 'off',
    headline: 'Not contributing',
    detail: null,
    contributing: false,
    registration: { state: 'unregistered', providerId: null },
    heartbeat: { healthy: false, lastSuccessAt: null, failingSince: null, consecutiveFailures: 0 },
    runningTasks: 0,
    limits: null,
    agentVersion: null,
    updatedAt: new Date().toISOString(),
    ...overrides,
  };
}

/**
 * A scripted, in-memory RayAgentService for renderer tests: no Docker behind it. Settings and tokens are checked
 * with the protocol's real schemas (validateSettings, EnrollmentToken), so the window sees the real messages.
 * Every call is recorded.
 */
export class ScriptedService implements RayAgentService {
  calls: Array<{ channel: InvokeChannel; args: unknown[] }> = [];
  settings: Settings = { ...DEFAULT_SETTINGS };
  status: StatusView = statusView();
  limits: OfferableLimits = {
    docker: { cpus: 2, memoryBytes: 23.4 * GiB },
    host: { cpus: 2, memoryBytes: 23.4 * GiB, model: 'Test CPU' },
  };
  token: string | null = null;
  tokenUnavailableReason: string | null = null;
  logs = '';
  contributeAnswer: ContributeAnswer = { ok: true };
  replaceAnswer: Answer = { ok: true };
  playgroundAnswer: Answer = { ok: true };

  #record(channel: InvokeChannel, args: unknown[]): void {
    this.calls.push({ channel, args });
  }

  callsTo(channel: InvokeChannel): unknown[][] {
    return this.calls.filter((call) => call.channel === channel).map((call) => call.args);
  }

  async 'settings:get'(): Promise<Settings> {
    this.#record('settings:get', []);
    return this.settings;
  }

  async 'settings:save'(patch: SettingsPatch): Promise<SaveResult> {
    this.#record('settings:save', [patch]);
    const changes = Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined));
    const checked = validateSettings({ ...this.settings, ...changes });
    if (checked.ok) this.settings = checked.settings;
    return checked;
  }

  async 'token:get-state'(): Promise<TokenState> {
    this.#record('token:get-state', []);
    return { stored: this.token !== null, unavailableReason: this.tokenUnavailableReason };
  }

  async 'token:set'(token: string): Promise<Answer> {
    this.#record('token:set', ['(token withheld)']);
    if (this.tokenUnavailableReason) return { ok: false, error: this.tokenUnavailableReason };
    const parsed = EnrollmentToken.safeParse(token);
    if (!parsed.success) return { ok: false, error: `The enrollment token ${parsed.error.issues[0]?.message}.` };
    this.token = parsed.data;
    return { ok: true };
  }

  async 'contribute:set'(on: boolean): Promise<ContributeAnswer> {
    this.#record('contribute:set', [on]);
    if (this.contributeAnswer.ok) this.settings = { ...this.settings, contribute: on };
    return this.contributeAnswer;
  }

  async 'container:replace'(): Promise<Answer> {
    this.#record('container:replace', []);
    if (this.replaceAnswer.ok) this.settings = { ...this.settings, contribute: true };
    return this.replaceAnswer;
  }

  async 'status:get'(): Promise<StatusView> {
    this.#record('status:get', []);
    return this.status;
  }

  async 'limits:get'(): Promise<OfferableLimits> {
    this.#record('limits:get', []);
    return this.limits;
  }

  async 'logs:tail'(lines: number): Promise<string> {
    this.#record('logs:tail', [lines]);
    return this.logs;
  }

  history: HistoryDocument = { version: 1, hours: [] };

  async 'history:get'(): Promise<HistoryDocument> {
    this.#record('history:get', []);
    return this.history;
  }

  async 'playground:start'(): Promise<Answer> {
    this.#record('playground:start', []);
    return this.playgroundAnswer;
  }

  stopAnswer: Answer = { ok: true };
  leaveAnswer: { ok: true; report: LeaveReport } | { ok: false; error: string } = {
    ok: true,
    report: { deregistered: true, removed: [], leftovers: [] },
  };

  async 'contribute:stop'(mode: StopMode): Promise<Answer> {
    this.#record('contribute:stop', [mode]);
    if (this.stopAnswer.ok) this.settings = { ...this.settings, contribute: false };
    return this.stopAnswer;
  }

  /** Leaving resets the settings to the defaults, as the real service removes them. */
  async 'cluster:leave'(): Promise<typeof this.leaveAnswer> {
    this.#record('cluster:leave', []);
    if (this.leaveAnswer.ok) this.settings = { ...DEFAULT_SETTINGS };
    return this.leaveAnswer;
  }
}
