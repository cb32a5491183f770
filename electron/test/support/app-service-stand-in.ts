import type { TokenVault } from '@ray-agent/controller/token-vault';
import {
  DEFAULT_SETTINGS,
  type LeaveReport,
  type PolicySignals,
  type PullProgress,
  type Settings,
  type StatusView,
  type StopMode,
} from '@ray-agent/protocol';

/**
 * A stand-in for @ray-agent/controller/app-service (the real one drives Docker), with the signature main.ts codes
 * against. It records its options and calls on globalThis.__appServiceStandIn, and lets the test push status.
 */
export function createAppService(options: { settingsDir: string; vault: TokenVault; notify?: (text: string) => void }) {
  const statusListeners: Array<(view: StatusView) => void> = [];
  const pullListeners: Array<(progress: PullProgress) => void> = [];
  const logListeners: Array<(chunk: string) => void> = [];
  const calls: Array<[string, unknown[]]> = [];
  let settings: Settings = { ...DEFAULT_SETTINGS };
  let shutdownResolve: () => void = () => {};
  let drainResolve: () => void = () => {};
  const signals: PolicySignals[] = [];
  const view: StatusView = {
    phase: 'off',
    headline: 'Not contributing',
    detail: null,
    contributing: false,
    registration: { state: 'unregistered', providerId: null },
    heartbeat: { healthy: false, lastSuccessAt: null, failingSince: null, consecutiveFailures: 0 },
    runningTasks: 0,
    limits: null,
    agentVersion: null,
    updatedAt: '2025-01-01T00:00:00.000Z',
  };
  const service = {
    async 'settings:get'() {
      calls.push(['settings:get', []]);
      return settings;
    },
    async 'settings:save'(patch: Partial<Settings>) {
      calls.push(['settings:save', [patch]]);
      settings = { ...settings, ...patch };
      return { ok: true as const, settings };
    },
    async 'token:get-state'() {
      return options.vault.state();
    },
    async 'token:set'(token: string) {
      return options.vault.set(token);
    },
    async 'contribute:set'(on: boolean) {
      calls.push(['contribute:set', [on]]);
      settings = { ...settings, contribute: on };
      return { ok: true as const };
    },
    async 'container:replace'() {
      calls.push(['container:replace', []]);
      return { ok: true as const };
    },
    async 'status:get'() {
      return view;
    },
    async 'limits:get'() {
      return { docker: null, host: { cpus: 2, memoryBytes: 2 ** 33, model: 'stand-in' } };
    },
    async 'logs:tail'(lines: number) {
      calls.push(['logs:tail', [lines]]);
      return '';
    },
    async 'playground:start'() {
      return { ok: true as const };
    },
    async 'contribute:stop'(mode: StopMode) {
      calls.push(['contribute:stop', [mode]]);
      settings = { ...settings, contribute: false };
      return { ok: true as const };
    },
    async 'history:get'() {
      calls.push(['history:get', []]);
      return { version: 1 as const, hours: [] };
    },
    async 'cluster:leave'() {
      calls.push(['cluster:leave', []]);
      settings = { ...DEFAULT_SETTINGS };
      const report: LeaveReport = { deregistered: true, removed: ['container ray-agent'], leftovers: [] };
      return { ok: true as const, report };
    },
    machineSignals(next: PolicySignals) {
      signals.push(next);
    },
    goingAway(kind: 'suspend' | 'shutdown') {
      calls.push(['goingAway', [kind]]);
      return new Promise<void>((resolve) => {
        drainResolve = resolve;
      });
    },
    resumed() {
      calls.push(['resumed', []]);
    },
    onStatus(listener: (view: StatusView) => void) {
      statusListeners.push(listener);
      return () => {};
    },
    onPull(listener: (progress: PullProgress) => void) {
      pullListeners.push(listener);
      return () => {};
    },
    onLogs(listener: (chunk: string) => void) {
      logListeners.push(listener);
      return () => {};
    },
    shutdown() {
      calls.push(['shutdown', []]);
      return new Promise<void>((resolve) => {
        shutdownResolve = resolve;
      });
    },
  };
  (globalThis as { __appServiceStandIn?: unknown }).__appServiceStandIn = {
    options,
    calls,
    pushStatus: (next: StatusView) => {
      for (const listener of statusListeners) listener(next);
    },
    pushPull: (progress: PullProgress) => {
      for (const listener of pullListeners) listener(progress);
    },
    finishShutdown: () => shutdownResolve(),
    finishDrain: () => drainResolve(),
    signals,
    setSettings: (next: Partial<Settings>) => {
      settings = { ...settings, ...next };
    },
  };
  return service;
}
