import type { PullProgress, RayAgentApi, Settings, StatusView } from '@ray-agent/protocol';
import { byTestId, errorMessage, setText, show } from './dom.js';
import {
  formatClock,
  heartbeatText,
  limitsText,
  needsAttention,
  pullText,
  registrationText,
  toggleLocked,
} from './format.js';

/** The status page: what the agent is doing, the contribute switch, pull progress and the playground offer. */
export class StatusPage {
  readonly #api: RayAgentApi;
  #view: StatusView | null = null;
  #settings: Settings | null = null;
  #toggleBusy = false;

  constructor(api: RayAgentApi) {
    this.#api = api;
    byTestId<HTMLInputElement>('contribute-toggle').addEventListener('change', () => void this.#toggle());
    byTestId<HTMLButtonElement>('playground-start').addEventListener('click', () => void this.#startPlayground());
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
    setText('agent-version', view.agentVersion ?? '—');
    setText('updated-at', formatClock(view.updatedAt));
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
