import { readFileSync } from 'node:fs';
import type {
  EventChannels,
  HistoryDocument,
  InvokeChannels,
  OfferableLimits,
  PolicySignals,
  PolicyView,
  PullProgress,
  SaveResult,
  Settings,
  StatusView,
  StopMode,
  TokenState,
} from '@ray-agent/protocol';
import { AgentContainer, type AgentSpec, type AgentStatus, DriftError } from '../container/agent-container.js';
import { agentSpecFor } from '../container/agent-spec.js';
import { DockerEngine, type EngineState } from '../engine/docker-engine.js';
import { HistoryLoop } from '../history/history-loop.js';
import { HistoryStore } from '../history/history-store.js';
import { Playground } from '../playground/playground.js';
import { containerActuator } from '../policy/container-actuator.js';
import { headlessSignals, localTime } from '../policy/machine-signals.js';
import { PolicyLoop } from '../policy/policy-loop.js';
import type { PolicyActuator } from '../policy/policy-target.js';
import { historySampler } from './history-sampler.js';
import { leaveCluster } from './leave.js';
import { SettingsStore } from './settings-store.js';
import { StatusPoller } from './status-poller.js';
import type { TokenVault } from './token-vault.js';
import { UpdateLoop, type UpdateView } from './update-loop.js';
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
  /** The policy loop's tick (default 2 s); tests shorten it. */
  policyIntervalMs?: number;
  /** The update loop's check interval (default 6 h); 0 turns the loop off (tests that do not test updates). */
  updateCheckIntervalMs?: number;
  /** How long a new image gets to reach contributing before it is rolled back. */
  updateContributingWithinMs?: number;
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
  /** The contribution policy: it alone starts, throttles and stops the agent for a configured cluster. */
  private readonly actuator: PolicyActuator;
  private readonly policy: PolicyLoop;
  private policyView: PolicyView | null = null;
  private lastApplyError: Error | null = null;
  /** How the person last stopped from the tray; cleared when they turn contributing on again. */
  private stopMode: StopMode | null = null;
  /** Signals pushed by a desktop shell (Electron's powerMonitor); until then, what a headless machine can tell. */
  private shellSignals: Omit<PolicySignals, 'nowMs' | 'weekday' | 'hour' | 'goingAway'> | null = null;
  private readonly headless = headlessSignals();
  private goingAwayKind: PolicySignals['goingAway'] = null;
  private readonly history: HistoryStore;
  private readonly historyLoop: HistoryLoop;
  private readonly updates: UpdateLoop | null;
  private updateView: UpdateView = null;

  constructor(private readonly options: AppServiceOptions) {
    this.store = new SettingsStore(options.settingsDir);
    const loaded = this.store.load();
    this.settings = loaded.settings;
    if (loaded.notice) options.notify?.(loaded.notice);
    this.engine = options.engine ?? DockerEngine.fromEnvironment();
    this.agent = new AgentContainer(this.engine.docker, options.containerName ? { name: options.containerName } : {});
    this.playground = new Playground(this.engine.docker, this.agent);
    this.poller = new StatusPoller(this.settings.statusPort);
    this.actuator = containerActuator({
      agent: this.agent,
      spec: () => this.agentSpec(),
      onProgress: (progress) => this.emitPull(progress),
    });
    this.policy = new PolicyLoop({
      actuator: {
        apply: async (target) => {
          this.stopping = target.kind === 'stopped';
          if (this.stopping) this.publish();
          try {
            await this.actuator.apply(target);
            this.lastApplyError = null;
          } catch (error) {
            this.lastApplyError = error as Error;
            throw error;
          } finally {
            this.stopping = false;
            void this.refresh();
          }
        },
      },
      readSignals: () => this.readSignals(),
      readInput: () => ({
        policy: this.settings.policy,
        // Nothing to contribute to yet: the playground starts by its own call, and until then there is no agent.
        contribute:
          this.settings.contribute && (this.settings.clusterAddress !== '' || this.playgroundSpec !== undefined),
        stopMode: this.stopMode,
      }),
      ...(options.policyIntervalMs !== undefined ? { intervalMs: options.policyIntervalMs } : {}),
      onView: (view) => {
        this.policyView = view;
        this.publish();
      },
      // Once per lasting failure (the loop reports a repeat only after a success), e.g. a container changed by hand,
      // which waits for the person's yes in the window.
      onError: (error) => options.notify?.(error.message),
    });
    this.history = new HistoryStore(options.settingsDir);
    if (this.history.notice) options.notify?.(this.history.notice);
    this.historyLoop = new HistoryLoop({
      store: this.history,
      sample: historySampler({
        docker: this.engine.docker,
        agentName: this.agent.name,
        agent: () => this.agentFacts,
        policy: () => this.policyView,
      }),
    });
    this.updates =
      options.updateCheckIntervalMs === 0
        ? null
        : new UpdateLoop({
            docker: this.engine.docker,
            agent: this.agent,
            settings: () => this.settings,
            spec: () => (this.settings.clusterAddress ? this.agentSpec() : undefined),
            // A switch drains the node: only while it contributes at full power, never when the person is back.
            mayDisrupt: () => this.policyView?.mode === 'contributing',
            stateDir: options.settingsDir,
            ...(options.updateCheckIntervalMs !== undefined ? { checkIntervalMs: options.updateCheckIntervalMs } : {}),
            ...(options.updateContributingWithinMs !== undefined
              ? { contributingWithinMs: options.updateContributingWithinMs }
              : {}),
            isContributing: async () => {
              await this.refresh();
              return this.view.phase === 'contributing';
            },
            onView: (view) => {
              this.updateView = view;
              this.publish();
            },
            onProgress: (progress) => this.emitPull(progress),
            notify: (text) => options.notify?.(text),
          });
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
    // The policy applies its first decision at once: a controller restarted at any moment puts the agent right.
    this.policy.start();
    this.historyLoop.start();
    this.updates?.start();
    // Left contributing to the playground: it is started again (the policy has no spec for it until then).
    if (this.settings.contribute && !this.settings.clusterAddress)
      void this['playground:start']().then((answer) => {
        if (!answer.ok) this.options.notify?.(answer.error);
      });
  }

  /** The desktop shell's view of the machine (idle time, power); the clock and going-away are added here. */
  machineSignals(signals: Pick<PolicySignals, 'idleSeconds' | 'onBattery' | 'batteryPercent'>): void {
    const changed = JSON.stringify(signals) !== JSON.stringify(this.shellSignals);
    this.shellSignals = { ...signals };
    if (changed) void this.policy.poke();
  }

  /**
   * The machine is about to sleep or shut down: Ray's drain with the policy's going-away deadline, then the agent
   * stops. Resolves when that is done, so the shell can hold the shutdown for it where the OS allows.
   */
  async goingAway(kind: 'suspend' | 'shutdown'): Promise<void> {
    this.goingAwayKind = kind;
    await this.policy.poke();
  }

  /** The machine woke up: the policy decides afresh (the node rejoins when the conditions allow). */
  resumed(): void {
    this.goingAwayKind = null;
    void this.policy.poke();
  }

  private async readSignals(): Promise<PolicySignals> {
    const nowMs = Date.now();
    const base = this.shellSignals ?? (await this.headless());
    return {
      idleSeconds: base.idleSeconds,
      onBattery: base.onBattery,
      batteryPercent: base.batteryPercent,
      nowMs,
      ...localTime(nowMs),
      goingAway: this.goingAwayKind,
    };
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
    await this.policy.stop();
    await this.updates?.stop();
    await this.historyLoop.stop();
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
    // New limits apply in place (docker update, Ray resized live); a new cluster or image replaces the container
    // after the agent drained. The policy then applies its current target again (a throttle stays a throttle).
    if (agentRelevant(before) !== agentRelevant(this.settings)) void this.reapply();
    else if (JSON.stringify(before.policy) !== JSON.stringify(this.settings.policy)) void this.policy.poke();
    return result;
  }

  async 'token:get-state'(): Promise<TokenState> {
    return this.options.vault.state();
  }

  async 'token:set'(token: string) {
    const result = this.options.vault.set(token);
    // While contributing, a new token goes into the running agent's volume now (it restarts to read it).
    if (result.ok && this.settings.contribute && this.settings.clusterAddress) void this.reapply();
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
    if (on) this.stopMode = null;
    if (on && !this.settings.clusterAddress && !this.playgroundSpec) return this['playground:start']();
    return this.applied();
  }

  async 'contribute:stop'(mode: StopMode): Promise<{ ok: true } | { ok: false; error: string }> {
    this.stopMode = mode;
    const saved = this.store.save({ contribute: false });
    if (!saved.ok) return { ok: false, error: Object.values(saved.errors)[0] ?? 'the settings could not be saved' };
    this.settings = saved.settings;
    const answer = await this.applied();
    return answer.ok ? answer : { ok: false, error: answer.error };
  }

  async 'history:get'(): Promise<HistoryDocument> {
    return this.history.document();
  }

  async 'cluster:leave'(): Promise<ReturnType<InvokeChannels['cluster:leave']>> {
    // Nothing may start the agent again while it is being removed.
    await this.policy.stop();
    await this.updates?.stop();
    try {
      const report = await leaveCluster({
        docker: this.engine.docker,
        agent: this.agent,
        settingsDir: this.options.settingsDir,
        vault: this.options.vault,
        managerUrl: this.settings.managerUrl,
        managerCaPem: this.options.managerCaFile ? readFileSync(this.options.managerCaFile, 'utf8') : null,
        image: this.settings.image,
      });
      // The settings file is gone: the app goes on with the defaults (not contributing, no cluster).
      this.settings = this.store.load().settings;
      this.stopMode = null;
      await this.refresh();
      return { ok: true, report };
    } catch (error) {
      return { ok: false, error: (error as Error).message };
    } finally {
      this.policy.start();
    }
  }

  /** Lets the policy apply the switch now and answers how that went. */
  private async applied(): Promise<{ ok: true } | { ok: false; error: string; confirmReplace?: boolean }> {
    this.lastApplyError = null;
    await this.policy.poke();
    const error = this.lastApplyError as Error | null;
    if (error === null) return { ok: true };
    // A container changed by hand is replaced only after the person says yes (container:replace).
    if (error instanceof DriftError) return { ok: false, error: error.message, confirmReplace: true };
    return { ok: false, error: error.message };
  }

  /** New settings for the agent: bring the container in line, then let the policy apply its target again. */
  private async reapply(): Promise<void> {
    try {
      if (this.settings.contribute && this.agentSpec() && this.policyView?.mode !== 'paused')
        await this.applyContribution();
    } catch (error) {
      if (!(error instanceof DriftError)) this.options.notify?.((error as Error).message);
    }
    await this.policy.reapply();
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
      this.stopMode = null;
      // The playground's agent runs under the policy too (it may step aside as any agent does).
      await this.policy.poke();
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
    // No spec first, so the policy cannot start the agent again while it is removed.
    this.playgroundSpec = undefined;
    await this.policy.poke();
    await this.agent.down({ remove: true });
    await this.playground.down();
    this.playgroundSpec = undefined;
  }

  /**
   * Brings a running agent in line with the settings (new limits in place, a new cluster or image by replacing it
   * after a drain), or replaces a container changed by hand once the person said yes. Starting, throttling and
   * stopping are the policy's.
   */
  private async applyContribution(options: { confirmDrift?: boolean } = {}): Promise<void> {
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
      policy: this.policyView,
      cluster: this.settings.clusterAddress
        ? { address: this.settings.clusterAddress, managerUrl: this.settings.managerUrl }
        : undefined,
      update: this.updateView,
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
