import type { PullProgress, RayAgentApi, Settings, StatusView, StopMode } from '@ray-agent/protocol';
import { byTestId, errorMessage, setText, show } from './dom.js';
import {
  clusterText,
  formatClock,
  heartbeatText,
  limitsText,
  needsAttention,
  pullText,
  registrationText,
  stopAllowed,
  toggleLocked,
} from './format.js';

/** The status page: what the agent is doing, the contribute switch, pull progress and the playground offer. */
export class StatusPage {
  readonly #api: RayAgentApi;
  #view: StatusView | null = null;
  #settings: Settings | null = null;
  #toggleBusy = false;
  #stopBusy = false;

  constructor(api: RayAgentApi) {
    this.#api = api;
    byTestId<HTMLInputElement>('contribute-toggle').addEventListener('change', () => void this.#toggle());
    byTestId<HTMLButtonElement>('playground-start').addEventListener('click', () => void this.#startPlayground());
    byTestId('stop-after-current').addEventListener('click', () => void this.#stop('after-current'));
    byTestId('stop-now').addEventListener('click', () => void this.#stop('now'));
  }

  /** Applies a view unless it is older than the one shown (a status:get answer may overtake an event). */
  showStatus(view: StatusView): void {
    if (this.#view && view.updatedAt < this.#view.updatedAt) return;
    this.#view = view;
    const card = byTestId('phase-card');
    card.dataset.phase = view.phase;
    card.classList.toggle('attention', needsAttention(view.phase));
    setText('status-headline', view.headline);
    setText('status-detail', view.detail ?? '');
    show('status-detail', Boolean(view.detail));
    setText('registration', registrationText(view.registration));
    setText('provider-id', view.registration.providerId ?? '—');
    const heartbeat = byTestId('heartbeat');
    heartbeat.textContent = heartbeatText(view.heartbeat);
    heartbeat.classList.toggle('bad', !view.heartbeat.healthy && view.heartbeat.failingSince !== null);
    setText('task-count', String(view.runningTasks));
    setText('task-label', view.runningTasks === 1 ? 'task running' : 'tasks running');
    setText('limits', limitsText(view.limits));
    const tunnel = byTestId('tunnel');
    tunnel.textContent = view.tunnel ? view.tunnel.line.replace(/^Tunnel: /, '') : '—';
    tunnel.classList.toggle('bad', Boolean(view.tunnel?.problem));
    // gVisor sandboxes are extra: a node without them still contributes, so "unavailable" is not shown as a fault.
    setText('sandbox', view.sandbox?.line ?? '—');
    setText('agent-version', view.agentVersion ?? '—');
    setText('updated-at', formatClock(view.updatedAt));
    this.#renderPolicy(view);
    this.#renderToggle();
  }

  showSettings(settings: Settings): void {
    this.#settings = settings;
    // No cluster configured: offer the local playground instead of a switch that has nowhere to contribute to.
    show('playground', settings.clusterAddress === '');
    this.#renderToggle();
  }

  showPull(progress: PullProgress): void {
    show('pull', true);
    setText('pull-image', progress.image);
    const bar = byTestId<HTMLProgressElement>('pull-bar');
    if (progress.fraction === null && !progress.done) bar.removeAttribute('value');
    else bar.value = progress.done && !progress.error ? 1 : (progress.fraction ?? 0);
    bar.setAttribute('aria-valuetext', pullText(progress));
    setText('pull-text', pullText(progress));
    setText('pull-error', progress.error ?? '');
    show('pull-error', progress.error !== null);
    byTestId('pull').classList.toggle('failed', progress.error !== null);
  }

  /** The policy's sentence, the stops, what runs now and where the compute goes. */
  #renderPolicy(view: StatusView): void {
    const sentenceText = view.policy && view.policy.sentence !== view.headline ? view.policy.sentence : '';
    setText('policy-sentence', sentenceText);
    show('policy-sentence', sentenceText !== '');
    byTestId('policy-sentence').dataset.mode = view.policy?.mode ?? '';
    this.#renderStops();

    const tasks = view.tasks ?? [];
    const list = byTestId('task-names');
    list.replaceChildren(
      ...tasks.map((task) => {
        const item = document.createElement('li');
        const name = document.createElement('span');
        name.className = 'mono';
        name.textContent = task.name;
        const count = document.createElement('span');
        count.className = 'count';
        count.textContent = `× ${task.count}`;
        item.append(name, count);
        return item;
      }),
    );
    show('task-names', tasks.length > 0);
    show('task-names-empty', tasks.length === 0);
    setText('cluster-line', clusterText(view.cluster ?? null, view.contributing));
    setText('update-line', view.update?.sentence ?? '');
    show('update-line', Boolean(view.update));
    byTestId('update-line').classList.toggle(
      'bad',
      view.update?.state === 'rolled-back' || view.update?.state === 'failed',
    );
  }

  #renderStops(): void {
    const allowed = this.#view ? stopAllowed(this.#view) : { afterCurrent: false, now: false };
    byTestId<HTMLButtonElement>('stop-after-current').disabled = this.#stopBusy || !allowed.afterCurrent;
    byTestId<HTMLButtonElement>('stop-now').disabled = this.#stopBusy || !allowed.now;
  }

  async #stop(mode: StopMode): Promise<void> {
    this.#stopBusy = true;
    this.#renderStops();
    const result = byTestId('stop-result');
    result.classList.remove('field-error');
    result.textContent = mode === 'now' ? 'Stopping now…' : 'Pausing: running tasks finish first…';
    try {
      const answer = await this.#api['contribute:stop'](mode);
      if (answer.ok) {
        result.textContent =
          mode === 'now'
            ? 'Stopped. Turn contributing on to start again.'
            : 'Pausing after the current tasks. Turn contributing on to start again.';
        if (this.#settings) this.#settings = { ...this.#settings, contribute: false };
      } else {
        result.textContent = answer.error;
        result.classList.add('field-error');
      }
    } catch (error) {
      result.textContent = errorMessage(error);
      result.classList.add('field-error');
    } finally {
      this.#stopBusy = false;
      this.#renderStops();
      this.#renderToggle();
    }
  }

  #renderToggle(): void {
    const toggle = byTestId<HTMLInputElement>('contribute-toggle');
    if (this.#settings && !this.#toggleBusy) toggle.checked = this.#settings.contribute;
    toggle.setAttribute('aria-checked', String(toggle.checked));
    toggle.disabled = this.#toggleBusy || !this.#settings || (this.#view !== null && toggleLocked(this.#view.phase));
  }

  async #toggle(): Promise<void> {
    const toggle = byTestId<HTMLInputElement>('contribute-toggle');
    const wanted = toggle.checked;
    this.#toggleBusy = true;
    this.#renderToggle();
    show('contribute-error', false);
    try {
      const answer = await this.#api['contribute:set'](wanted);
      if (
        !answer.ok &&
        answer.confirmReplace &&
        window.confirm(`${answer.error}\n\nReplace it with the container this app makes?`)
      ) {
        const replaced = await this.#api['container:replace']();
        if (replaced.ok) {
          if (this.#settings) this.#settings = { ...this.#settings, contribute: wanted };
        } else {
          setText('contribute-error', replaced.error);
          show('contribute-error', true);
        }
      } else if (answer.ok) {
        if (this.#settings) this.#settings = { ...this.#settings, contribute: wanted };
      } else {
        setText('contribute-error', answer.error);
        show('contribute-error', true);
      }
    } catch (error) {
      setText('contribute-error', errorMessage(error));
      show('contribute-error', true);
    } finally {
      this.#toggleBusy = false;
      this.#renderToggle();
    }
  }

  async #startPlayground(): Promise<void> {
    const button = byTestId<HTMLButtonElement>('playground-start');
    button.disabled = true;
    const result = byTestId('playground-result');
    result.classList.remove('field-error');
    result.textContent = 'Starting a local Ray head and manager on this computer…';
    try {
      const answer = await this.#api['playground:start']();
      if (answer.ok) {
        result.textContent = 'The local playground is starting; this page follows its progress.';
      } else {
        result.textContent = answer.error;
        result.classList.add('field-error');
      }
    } catch (error) {
      result.textContent = errorMessage(error);
      result.classList.add('field-error');
    } finally {
      button.disabled = false;
    }
  }
}
