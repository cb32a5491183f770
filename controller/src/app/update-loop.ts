import type { PullProgress, StatusView } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import type { AgentContainer, AgentSpec } from '../container/agent-container.js';
import { drainSeconds } from '../container/agent-container-spec.js';
import { agentControl } from '../container/agent-control.js';
import {
  localImage,
  newerImageAvailable,
  parseImageRef,
  previousRef,
  pullImage,
  removeRef,
  shortDigest,
  tagImage,
  type UpdateCheck,
} from '../container/image-update.js';
import { type UpdateState, UpdateStateStore, type UpdateSwitch } from './update-state.js';

export const DEFAULT_CHECK_INTERVAL_MS = 6 * 3_600_000;
export const DEFAULT_CONTRIBUTING_WITHIN_MS = 5 * 60_000;
/** How often waiting for the moment and watching a new image look again. */
const DEFAULT_POLL_MS = 5_000;

/** What the window shows of an update (StatusView.update); null: nothing under way. */
export type UpdateView = NonNullable<StatusView['update']> | null;

export interface UpdateLoopOptions {
  docker: Dockerode;
  agent: AgentContainer;
  settings: () => { image: string; updates: 'auto' | 'off' };
  /** The spec the app runs now; undefined while it runs none (no cluster configured). */
  spec: () => AgentSpec | undefined;
  /** The policy allows a drain now: not stepping aside, the person not back. */
  mayDisrupt: () => boolean;
  /** Where update-state.json is kept (the settings directory). */
  stateDir: string;
  checkIntervalMs?: number;
  /** How long a new image gets to reach contributing (counted only while mayDisrupt holds). */
  contributingWithinMs?: number;
  isContributing: () => Promise<boolean>;
  onView: (view: UpdateView) => void;
  onProgress?: (progress: PullProgress) => void;
  /** Only for what the person must know: an update rolled back (or a rollback that failed). */
  notify: (text: string) => void;
  pollMs?: number;
  /** Routine lines (checks, switches) for the app's log; nothing here is for the person. */
  log?: (line: string) => void;
}

/**
 * Keeps the agent on the newest image of its configured tag without killing work: check the registry, pull the
 * newer image by digest in the background (the tag does not move, so no other `up` starts it unannounced), wait for
 * a moment the policy allows, then move the tag and replace the container (Ray's drain with reason `update`, then
 * `docker stop`, whose SIGTERM drains again). A new image that does not reach contributing in time is rolled back
 * and its digest never tried again. Every step that changes the engine is written to update-state.json first, so a
 * controller killed at any instant finishes or undoes the switch when it starts again.
 */
export class UpdateLoop {
  private readonly store: UpdateStateStore;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private cycle: Promise<void> | null = null;
  private started = false;
  private stopped = false;
  private shown: UpdateView = null;
  private shownKey = 'null';
  private last: UpdateCheck | null = null;
  private rollbackFailureNotified = false;

  constructor(private readonly options: UpdateLoopOptions) {
    this.store = new UpdateStateStore(options.stateDir);
  }

  /** Finishes a switch a previous run left (if any), checks now, then every checkIntervalMs. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.schedule(0);
  }

  /** Stops checking; a pull or a wait is abandoned, a container operation under way is let finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort();
    await this.cycle?.catch(() => undefined);
  }

  /**
   * One whole cycle: check, pull, wait for the moment, switch, watch, roll back if need be. Joins a cycle under way.
   * Resolves when it is over (or the loop stopped); never rejects: a failure shows as the `failed` view.
   */
  checkNow(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.cycle ??= this.runCycle()
      .catch((error) => {
        if (this.stopped) return;
        const message = error instanceof Error ? error.message : String(error);
        this.log(`update failed: ${message}`);
        this.show({ state: 'failed', sentence: `Could not update the agent image: ${message}` });
      })
      .finally(() => {
        this.cycle = null;
      });
    return this.cycle;
  }

  get view(): UpdateView {
    return this.shown;
  }

  /** The last check's answer (e.g. "no updates: the image is local"); null before the first. */
  get lastCheck(): UpdateCheck | null {
    return this.last;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      void this.checkNow().finally(() => {
        if (!this.stopped) this.schedule(this.options.checkIntervalMs ?? DEFAULT_CHECK_INTERVAL_MS);
      });
    }, ms);
    this.timer.unref?.();
  }

  private async runCycle(): Promise<void> {
    let state = this.load();
    if (state.switch !== null) {
      await this.resume(state, state.switch);
      if (this.stopped) return;
      state = this.load();
      if (state.switch !== null) return; // a rollback that failed: the next cycle tries again
    }
    const settings = this.options.settings();
    if (settings.updates === 'off') {
      this.show(null);
      return;
    }
    const image = settings.image;
    const rejected = state.rejected.filter((entry) => entry.image === image);
    const check = await newerImageAvailable(this.options.docker, image, {
      rejected: rejected.map((entry) => entry.digest),
    });
    this.last = check;
    this.log(check.sentence);
    if (check.kind === 'rejected') {
      // The rollback stays on show while the registry's newest is the image that failed.
      const entry = rejected.find((item) => item.digest === check.digest);
      this.show({ state: 'rolled-back', sentence: rolledBackSentence(image, check.digest, entry?.reason ?? '') });
      return;
    }
    if (check.kind !== 'newer') {
      this.show(null);
      return;
    }

    this.show({ state: 'available', sentence: `A newer agent image is available (${image}); downloading it.` });
    const newImageId = await pullImage(
      this.options.docker,
      check.pullRef,
      (progress) => {
        this.options.onProgress?.(progress);
        this.show({ state: 'pulling', sentence: pullingSentence(progress) });
      },
      { signal: this.abort.signal },
    );
    if (newImageId === check.currentId) {
      // The same image under a new manifest digest: nothing to switch.
      await removeRef(this.options.docker, check.pullRef);
      this.show(null);
      return;
    }

    const spec = await this.waitForMoment(image);
    if (spec === null) return;
    // Someone moved the tag meanwhile (a pull by hand): the next check decides afresh.
    if ((await localImage(this.options.docker, image))?.id !== check.currentId) {
      this.show(null);
      return;
    }
    const record: UpdateSwitch = {
      phase: 'switching',
      image,
      digest: check.digest,
      newImageId,
      previousImageId: check.currentId,
      startedAt: new Date().toISOString(),
      reason: null,
    };
    this.save({ ...state, switch: record });
    this.log(`switching ${image} to ${shortDigest(check.digest)}`);
    this.show({
      state: 'switching',
      sentence: 'Switching to the newer agent image: running tasks finish first, then the agent restarts on it.',
    });
    // The way back first, then the tag, then the container: each step is safe to repeat after a kill.
    await tagImage(this.options.docker, record.previousImageId, previousRef(image));
    await tagImage(this.options.docker, newImageId, image);
    await this.replace(spec);
    await this.probation(record);
  }

  /** Until the policy allows a drain with the agent running this image; null when the update is called off. */
  private async waitForMoment(image: string): Promise<AgentSpec | null> {
    let shownWaiting = false;
    for (;;) {
      if (this.stopped) return null;
      const settings = this.options.settings();
      if (settings.updates !== 'auto' || settings.image !== image) {
        this.show(null);
        return null;
      }
      const spec = this.options.spec();
      if (spec !== undefined && spec.image === image && this.options.mayDisrupt()) {
        const status = await this.options.agent.status().catch(() => null);
        if (status?.running === true) return spec;
      }
      if (!shownWaiting) {
        shownWaiting = true;
        this.show({
          state: 'waiting',
          sentence:
            'A newer agent image is ready; it is switched to when the agent runs and the contribution policy allows a pause.',
        });
      }
      await this.sleep(this.pollMs);
    }
  }

  /** The new image has contributingWithinMs to contribute; else it is rolled back. */
  private async probation(record: UpdateSwitch): Promise<void> {
    const verdict = await this.waitContributing(record.newImageId);
    if (verdict === 'stopped') return; // update-state keeps the switch: the next start watches again
    if (verdict === 'contributing') {
      this.save({ ...this.load(), switch: null });
      await removeRef(this.options.docker, previousRef(record.image));
      this.log(`${record.image} now runs ${shortDigest(record.digest)}`);
      this.show(null);
      return;
    }
    const reason = `it did not start contributing within ${duration(this.options.contributingWithinMs ?? DEFAULT_CONTRIBUTING_WITHIN_MS)}`;
    const rollingBack: UpdateSwitch = { ...record, phase: 'rolling-back', reason };
    const state = this.load();
    // One write: the digest is rejected and the rollback is on record together.
    this.save({
      ...state,
      rejected: [
        ...state.rejected.filter((entry) => !(entry.image === record.image && entry.digest === record.digest)),
        { image: record.image, digest: record.digest, at: new Date().toISOString(), reason },
      ],
      switch: rollingBack,
    });
    await this.rollBack(rollingBack);
  }

  private async rollBack(record: UpdateSwitch): Promise<void> {
    this.log(`rolling back ${record.image}: ${record.reason ?? ''}`);
    this.show({
      state: 'switching',
      sentence: 'The newer agent image did not start contributing; going back to the previous one.',
    });
    const docker = this.options.docker;
    try {
      await tagImage(docker, record.previousImageId, record.image);
      const running = await this.containerImageId();
      if (running !== record.previousImageId) {
        const spec = this.options.spec();
        if (spec !== undefined && spec.image === record.image) await this.replace(spec);
        // Nothing to run now (the cluster was left meanwhile): at least the failed image stops.
        else if (running === record.newImageId) await this.options.agent.down({ remove: true });
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (!this.rollbackFailureNotified) {
        this.rollbackFailureNotified = true;
        this.options.notify(
          `Ray Agent could not go back to the previous agent image after a failed update: ${message}`,
        );
      }
      throw error;
    }
    this.save({ ...this.load(), switch: null });
    const { repository } = parseImageRef(record.image);
    await removeRef(docker, `${repository}@${record.digest}`);
    await removeRef(docker, previousRef(record.image));
    const sentence = rolledBackSentence(record.image, record.digest, record.reason ?? '');
    this.show({ state: 'rolled-back', sentence });
    this.options.notify(sentence);
  }

  /** After a restart: a switch on record is watched to its end, undone, or its rollback finished. */
  private async resume(state: UpdateState, record: UpdateSwitch): Promise<void> {
    if (record.phase === 'rolling-back') {
      await this.rollBack(record);
      return;
    }
    if ((await this.containerImageId()) === record.newImageId) {
      this.log(`resuming the switch of ${record.image} to ${shortDigest(record.digest)}`);
      this.show({ state: 'switching', sentence: 'Checking that the newer agent image contributes.' });
      await tagImage(this.options.docker, record.newImageId, record.image);
      await this.probation(record);
      return;
    }
    // Killed before the new container ran: put the tag back; the next check switches again when the policy allows.
    this.log(`undoing an unfinished switch of ${record.image}`);
    await tagImage(this.options.docker, record.previousImageId, record.image);
    this.save({ ...state, switch: null });
    await removeRef(this.options.docker, previousRef(record.image));
  }

  /** Polls until the container runs `imageId` and contributes; the time counts only while a drain is allowed. */
  private async waitContributing(imageId: string): Promise<'contributing' | 'timeout' | 'stopped'> {
    const within = this.options.contributingWithinMs ?? DEFAULT_CONTRIBUTING_WITHIN_MS;
    let counted = 0;
    let last = Date.now();
    for (;;) {
      if (this.stopped) return 'stopped';
      const runs = (await this.containerImageId().catch(() => null)) === imageId;
      if (runs && (await this.options.isContributing().catch(() => false))) return 'contributing';
      const now = Date.now();
      // The person came back: stepping aside may stop the agent, which is no fault of the image.
      if (this.options.mayDisrupt()) counted += now - last;
      last = now;
      if (counted >= within) return 'timeout';
      await this.sleep(Math.min(this.pollMs, Math.max(100, within - counted)));
    }
  }

  /** Replaces the container with one of `spec`'s image: Ray drains (reason update), then the container stops. */
  private async replace(spec: AgentSpec): Promise<void> {
    const agent = this.options.agent;
    const status = await agent.status();
    if (status.running) {
      const seconds = drainSeconds(spec);
      // Ray's own drain lets libraries that honour it save work; an image without the control bundle (or any
      // failure) leaves it to docker stop, whose SIGTERM drains too.
      await agentControl(
        this.options.docker,
        agent.name,
        { command: 'drain', deadlineSeconds: seconds, reason: 'update' },
        { timeoutMs: (seconds + 30) * 1000 },
      ).catch((error) => this.log(`drain before the switch: ${(error as Error).message}; docker stop drains`));
    }
    // Same tag, same config hash: `up` would adopt the old container, so it goes first (a graceful stop).
    await agent.down({ remove: true });
    await agent.up(spec, this.options.onProgress ?? (() => {}), { pull: 'missing' });
  }

  private async containerImageId(): Promise<string | null> {
    const status = await this.options.agent.status();
    if (!status.exists || status.id === null) return null;
    try {
      return (await this.options.docker.getContainer(status.id).inspect()).Image;
    } catch (error) {
      if ((error as { statusCode?: unknown }).statusCode === 404) return null;
      throw error;
    }
  }

  private load(): UpdateState {
    const { state, notice } = this.store.load();
    if (notice !== null) this.log(notice);
    return state;
  }

  private save(state: UpdateState): void {
    this.store.save(state);
  }

  private show(view: UpdateView): void {
    const key = JSON.stringify(view);
    if (key === this.shownKey) return;
    this.shown = view;
    this.shownKey = key;
    this.options.onView(view);
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private get pollMs(): number {
    return this.options.pollMs ?? DEFAULT_POLL_MS;
  }

  private sleep(ms: number): Promise<void> {
    const signal = this.abort.signal;
    return new Promise((resolve) => {
      if (signal.aborted) {
        resolve();
        return;
      }
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

function pullingSentence(progress: PullProgress): string {
  const MB = 1_000_000;
  if (progress.fraction === null || progress.totalBytes === 0) return 'Downloading the newer agent image…';
  return `Downloading the newer agent image: ${Math.floor(progress.fraction * 100)} % of ${Math.max(1, Math.round(progress.totalBytes / MB))} MB.`;
}

function rolledBackSentence(image: string, digest: string, reason: string): string {
  return `The agent image update was rolled back${reason ? ` (${reason})` : ''}: the previous image runs again, and ${image} ${shortDigest(digest)} will not be tried again.`;
}

function duration(ms: number): string {
  return ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
}
