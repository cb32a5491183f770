import type { LeaveReport, RayAgentApi, Settings } from '@ray-agent/protocol';
import { byTestId, errorMessage, setText, show } from './dom.js';

/**
 * "Leave this cluster": asks first (it removes the token and the settings too), then shows what was removed and
 * what was left behind, so the person can see that nothing was (or what to remove by hand).
 */
export class LeaveCluster {
  readonly #api: RayAgentApi;
  readonly #onLeft: (settings: Settings) => void;

  constructor(api: RayAgentApi, onLeft: (settings: Settings) => void) {
    this.#api = api;
    this.#onLeft = onLeft;
    byTestId<HTMLButtonElement>('leave-button').addEventListener('click', () => void this.#leave());
  }

  async #leave(): Promise<void> {
    const question =
      'Leave this cluster?\n\nRunning tasks finish first (up to the drain deadline). Then this computer is ' +
      'deregistered from the manager, and the agent container, its image, its volumes, the enrollment token and ' +
      'these settings are removed.';
    if (!window.confirm(question)) return;
    const button = byTestId<HTMLButtonElement>('leave-button');
    button.disabled = true;
    show('leave-report', false);
    setText('leave-result', 'Leaving: letting running tasks finish, then removing everything…');
    byTestId('leave-result').classList.remove('field-error');
    try {
      const answer = await this.#api['cluster:leave']();
      if (!answer.ok) {
        setText('leave-result', answer.error);
        byTestId('leave-result').classList.add('field-error');
        return;
      }
      this.#showReport(answer.report);
      this.#onLeft(await this.#api['settings:get']());
    } catch (error) {
      setText('leave-result', errorMessage(error));
      byTestId('leave-result').classList.add('field-error');
    } finally {
      button.disabled = false;
    }
  }

  #showReport(report: LeaveReport): void {
    setText(
      'leave-result',
      report.leftovers.length === 0 ? 'Left the cluster. Nothing is left behind.' : 'Left the cluster, with leftovers.',
    );
    setText(
      'leave-deregistered',
      report.deregistered
        ? 'Deregistered from the manager.'
        : 'Not deregistered: the manager could not be reached; the cluster operator can remove this computer.',
    );
    fillList('leave-removed', report.removed, 'Nothing needed removing.');
    fillList('leave-leftovers', report.leftovers, 'Nothing.');
    byTestId('leave-leftovers').classList.toggle('field-error', report.leftovers.length > 0);
    show('leave-report', true);
  }
}

function fillList(id: string, items: string[], empty: string): void {
  const list = byTestId(id);
  list.replaceChildren(
    ...(items.length === 0 ? [empty] : items).map((text) => {
      const item = document.createElement('li');
      item.textContent = text;
      return item;
    }),
  );
}
