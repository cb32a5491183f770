import { readFileSync } from 'node:fs';
import type {
  EventChannels,
  InvokeChannels,
  OfferableLimits,
  PullProgress,
  SaveResult,
  Settings,
  StatusView,
  TokenState,
} from '@ray-agent/protocol';
import { AgentContainer, type AgentSpec, type AgentStatus, DriftError } from '../container/agent-container.js';
import { agentSpecFor } from '../container/agent-spec.js';
import { DockerEngine, type EngineState } from '../engine/docker-engine.js';
import { Playground } from '../playground.js';
import { SettingsStore } from './settings-store.js';
import { StatusPoller } from './status-poller.js';
import type { TokenVault } from './token-vault.js';
import { type AgentFacts, type ContainerFacts, deriveView, type EngineFacts, tunnelFacts } from './view-model.js';

/** One handler per invoke channel of the IPC contract, each answering asynchronously. */
export type RayAgentService = {
  [C in keyof InvokeChannels]: (...args: Parameters<InvokeChannels[C]>) => Promise<ReturnType<InvokeChannels[C]>>;
};

export interface AppServiceOptions {
  settingsDir: string;
  vault: TokenVault;
  engine?: DockerEngine;
  /** The agent container's name; tests run their own. */
  containerName?: string;
  managerImage?: string;
  /** PEM file of a private CA for the manager (the app's settings assume a publicly trusted certificate). */
  managerCaFile?: string;
  /** Extra agent variables (e.g. a shorter heartbeat interval in tests). */
  extraEnv?: Record<string, string>;
  /** A Docker network for the agent (tests put it next to their cluster). */
  network?: string;
  notify?: (text: string) => void;
  pollIntervalMs?: number;
}

const MAX_LOG_LINES = 2000;

/**
 * Everything the tray app does, without Electron: the window's IPC calls, the tray's toggle, status polling, pull
 * progress and logs, over the real container controller. The Electron main process and the headless test bridge
 * both wrap this one object.
 */
export class AppService implements RayAgentService {
  private settings: Settings;
  private readonly store: SettingsStore;
  private readonly engine: DockerEngine;
  private readonly agent: AgentContainer;
  private readonly playground: Playground;
  private readonly listeners = {
    status: new Set<(view: StatusView) => void>(),
    pull: new Set<(progress: PullProgress) => void>(),
    logs: new Set<(text: string) => void>(),
  };
  private engineState: EngineFacts = { kind: 'not-running', message: 'Checking Docker…', fix: '' };
  private container: AgentStatus | undefined;
  private agentFacts: AgentFacts | undefined;
  private pull: PullProgress | undefined;
  private stopping = false;
  private view: StatusView;
  private viewKey = '';
  private playgroundSpec: AgentSpec | undefined;
  private stops: Array<() => void> = [];
  private poller: StatusPoller;
  private logFollow: { stop: () => void } | undefined;

  constructor(private readonly options: AppServiceOptions) {
    this.store = new SettingsStore(options.settingsDir);
    const loaded = this.store.load();
    this.settings = loaded.settings;
    if (loaded.notice) options.notify?.(loaded.notice);
    this.engine = options.engine ?? DockerEngine.fromEnvironment();
    this.agent = new AgentContainer(this.engine.docker, options.containerName ? { name: options.containerName } : {});
    this.playground = new Playground(this.engine.docker, this.agent);
    this.poller = new StatusPoller(this.settings.statusPort);
    this.view = this.derive();
  }

  /** Starts watching Docker and the agent; resumes contributing if the person left it on. */
  start(): void {
    this.stops.push(
      this.engine.watch((state) => {
        this.engineState = engineFacts(state);
        void this.refresh();
      }),
    );
    const interval = this.options.pollIntervalMs ?? 2_000;
    const timer = setInterval(() => void this.refresh(), interval);
    this.stops.push(() => clearInterval(timer));
    if (this.settings.contribute)
      void this.applyContribution().catch((error) => this.options.notify?.((error as Error).message));
  }

  onStatus(listener: (view: StatusView) => void): () => void {
    return subscribe(this.listeners.status, listener);
  }
  onPull(listener: (progress: PullProgress) => void): () => void {
    return subscribe(this.listeners.pull, listener);
  }
  onLogs(listener: (text: string) => void): () => void {
    return subscribe(this.listeners.logs, listener);
  }

  /** Before the app quits: stop watching, and stop the agent gracefully unless the person chose to leave it running. */
  async shutdown(): Promise<void> {
    for (const stop of this.stops.splice(0)) stop();
    this.logFollow?.stop();
    if (this.settings.onQuit === 'stop') await this.agent.down().catch(() => undefined);
  }

  async 'settings:get'(): Promise<Settings> {
    return this.settings;
  }

  async 'settings:save'(patch: Parameters<InvokeChannels['settings:save']>[0]): Promise<SaveResult> {
    const before = this.settings;
    const result = this.store.save(patch);
    if (!result.ok) return result;
    this.settings = result.settings;
    if (before.statusPort !== this.settings.statusPort) this.poller = new StatusPoller(this.settings.statusPort);
    // New limits or a new cluster take effect at once: the container is replaced after the agent drained.
    if (this.settings.contribute && agentRelevant(before) !== agentRelevant(this.settings))
      void this.applyContribution().catch((error) => this.options.notify?.((error as Error).message));
    return result;
  }

  async 'token:get-state'(): Promise<TokenState> {
    return this.options.vault.state();
  }

  async 'token:set'(token: string) {
    const result = this.options.vault.set(token);
    // While contributing, a new token goes into the running agent's volume now (it restarts to read it).
    if (result.ok && this.settings.contribute && this.settings.clusterAddress)
      void this.applyContribution().catch((error) => this.options.notify?.((error as Error).message));
    return result;
  }

  async 'contribute:set'(on: boolean): Promise<ReturnType<InvokeChannels['contribute:set']>> {
    if (on) {
      const missing = this.missingForContribution();
      if (missing) return { ok: false, error: missing };
    }
    const saved = this.store.save({ contribute: on });
    if (!saved.ok) return { ok: false, error: Object.values(saved.errors)[0] ?? 'the settings could not be saved' };
    this.settings = saved.settings;
    try {
      await this.applyContribution();
      return { ok: true };
    } catch (error) {
      // A container changed by hand is replaced only after the person says yes (container:replace).
      if (error instanceof DriftError) return { ok: false, error: error.message, confirmReplace: true };
      return { ok: false, error: (error as Error).message };
    }
  }

  async 'container:replace'(): Promise<{ ok: true } | { ok: false; error: string }> {
    try {
      await this.applyContribution({ confirmDrift: true });
      return { ok: true };
    } catch (error) {
      return { ok: false, error: (error as Error).message };
    }
  }

  async 'status:get'(): Promise<StatusView> {
    await this.refresh();
    return this.view;
  }

  async 'limits:get'(): Promise<OfferableLimits> {
    return this.agent.limits();
  }

  async 'logs:tail'(lines: number): Promise<string> {
    const collected: string[] = [];
    try {
      const read = await this.agent.logs({ tail: Math.min(lines, MAX_LOG_LINES), follow: false }, (line) =>
        collected.push(line),
      );
      await read.ended;
    } catch {
      return '';
    }
    return collected.join('\n');
  }

  async 'playground:start'(): Promise<{ ok: true } | { ok: false; error: string }> {
    try {
      const { spec } = await this.playground.up({
        settings: this.settings,
        managerImage: this.options.managerImage ?? 'ray-agent-manager:dev',
        onProgress: (progress) => this.emitPull(progress),
        ...(this.options.extraEnv ? { extraEnv: this.options.extraEnv } : {}),
      });
      this.playgroundSpec = spec;
      const saved = this.store.save({ contribute: true });
      if (saved.ok) this.settings = saved.settings;
      await this.refresh();
      // The sample job shows tasks being counted; it runs on after this call returns.
      void this.waitUntilContributing()
        .then(() => this.playground.sampleJob())
        .then((output) => this.emitLogs(output))
        .catch((error) => this.options.notify?.(`The sample job did not run: ${(error as Error).message}`));
      return { ok: true };
    } catch (error) {
      return { ok: false, error: (error as Error).message };
    }
  }

  /** Removes the playground (head, manager, network) and stops the agent. */
  async stopPlayground(): Promise<void> {
    await this.agent.down({ remove: true });
    await this.playground.down();
    this.playgroundSpec = undefined;
  }

  /** Brings the container in line with the settings: running the agent as configured, or stopped. */
  private async applyContribution(options: { confirmDrift?: boolean } = {}): Promise<void> {
    if (!this.settings.contribute) {
      this.stopping = true;
      this.publish();
      try {
        await this.agent.down();
      } finally {
        this.stopping = false;
        await this.refresh();
      }
      return;
    }
    const spec = this.agentSpec();
    if (!spec) {
      if (!this.settings.clusterAddress) {
        await this['playground:start']();
        return;
      }
      throw new Error(this.missingForContribution() ?? 'the agent is not configured');
    }
    this.pull = undefined;
    await this.agent.up(spec, (progress) => this.emitPull(progress), options);
    await this.refresh();
  }

  private agentSpec(): AgentSpec | undefined {
    if (!this.settings.clusterAddress) return this.playgroundSpec;
    return appAgentSpec(this.settings, this.agent.name, this.options, this.options.vault.get());
  }

  private missingForContribution(): string | null {
    if (!this.settings.clusterAddress) return null; // the playground
    if (!this.settings.managerUrl) return 'Set the manager URL in Settings first.';
    if (!this.options.vault.state().stored && !this.container?.exists)
      return 'Paste the enrollment token from the cluster operator in Settings first.';
    return null;
  }

  private async refresh(): Promise<void> {
    if (this.engineState.kind === 'ready') {
      // A tunnel container that restarted took the agent's network with it: the agent restarts into the new one.
      if (this.settings.contribute && !this.stopping) await this.agent.rejoinTunnel().catch(() => false);
      this.container = await this.agent.status().catch(() => undefined);
      this.agentFacts = this.container?.running ? await this.poller.read() : undefined;
      if (this.container?.running && this.listeners.logs.size > 0 && !this.logFollow) void this.followLogs();
    }
    this.publish();
  }

  private async followLogs(): Promise<void> {
    try {
      const follow = await this.agent.logs({ tail: 0, follow: true }, (line) => this.emitLogs(line));
      this.logFollow = follow;
      await follow.ended;
    } catch {
      // no container yet; the next refresh tries again
    }
    this.logFollow = undefined;
  }

  private async waitUntilContributing(timeoutMs = 180_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.view.phase === 'contributing') return;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    throw new Error('the agent did not start contributing in time');
  }

  private derive(): StatusView {
    const container: ContainerFacts | undefined = this.container?.exists
      ? {
          running: this.container.running,
          restarting: this.container.restarting,
          restartCount: this.container.restartCount,
          exitCode: this.container.exitCode,
          startedAt: this.container.startedAt,
          oomKilled: this.container.oomKilled,
          memoryBytes: this.container.memoryBytes,
        }
      : undefined;
    return deriveView({
      contribute: this.settings.contribute,
      engine: this.engineState,
      container,
      agent: this.agentFacts,
      pull: this.pull,
      stopping: this.stopping,
      now: new Date(),
      tunnel: tunnelFacts(this.container, this.agent.tunnelName),
    });
  }

  private publish(): void {
    this.view = this.derive();
    const { updatedAt: _ignored, ...rest } = this.view;
    const key = JSON.stringify(rest);
    if (key === this.viewKey) return;
    this.viewKey = key;
    for (const listener of this.listeners.status) listener(this.view);
  }

  private emitPull(progress: PullProgress): void {
    this.pull = progress;
    for (const listener of this.listeners.pull) listener(progress);
    this.publish();
  }

  private emitLogs(text: string): void {
    for (const listener of this.listeners.logs) listener(text);
  }
}

/** The spec the tray app runs for a configured cluster: the CLI's builder, with the stored token and the options. */
export function appAgentSpec(
  settings: Settings,
  name: string,
  options: Pick<AppServiceOptions, 'managerCaFile' | 'network' | 'extraEnv'>,
  token: string | null,
): AgentSpec {
  return agentSpecFor({
    settings,
    name,
    secrets: { token, managerCaPem: options.managerCaFile ? readFileSync(options.managerCaFile, 'utf8') : null },
    overrides: {
      ...(options.network ? { network: options.network } : {}),
      ...(options.extraEnv ? { extraEnv: options.extraEnv } : {}),
    },
  });
}

function engineFacts(state: EngineState): EngineFacts {
  return state.kind === 'ready' ? { kind: 'ready' } : { kind: state.kind, message: state.message, fix: state.fix };
}

function agentRelevant(settings: Settings): string {
  const { clusterAddress, managerUrl, cpus, memoryMiB, image, statusPort, network } = settings;
  return JSON.stringify({ clusterAddress, managerUrl, cpus, memoryMiB, image, statusPort, network });
}

function subscribe<T>(set: Set<T>, listener: T): () => void {
  set.add(listener);
  return () => set.delete(listener);
}

export type AppEvents = EventChannels;

/** The app service, already watching Docker and the agent (Electron's main process and the test bridge use this). */
export function createAppService(options: AppServiceOptions): AppService {
  const service = new AppService(options);
  service.start();
  return service;
}
