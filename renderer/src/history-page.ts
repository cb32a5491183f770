import type { HistoryDocument, RayAgentApi } from '@ray-agent/protocol';
import type { Chart } from 'chart.js';
import { errorMessage } from './dom.js';
import { cpuTasksChart, timeChart } from './history-charts.js';
import { hasAnything, lastDays, lastHours } from './history-data.js';
import { cpuTimeSummary, renderTable, type ViewSpec } from './history-summary.js';

const VIEWS: ViewSpec[] = [
  { id: '24h', title: 'Last 24 hours', per: 'hour', unit: 'minutes', buckets: (doc, now) => lastHours(doc, now) },
  { id: '30d', title: 'Last 30 days', per: 'day', unit: 'hours', buckets: (doc, now) => lastDays(doc, now) },
];

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Adds the History tab and its (empty) panel to the page, before the tabs are wired: the page's markup stays the
 * same for everyone else, and the history panel builds itself.
 */
export function mountHistoryTab(): void {
  const tabs = document.querySelector('.tabs');
  const main = document.querySelector('main');
  if (!tabs || !main || document.getElementById('tab-history')) return;
  const tab = element(
    'button',
    { type: 'button', role: 'tab', id: 'tab-history', 'aria-controls': 'page-history', 'data-testid': 'tab-history' },
    'History',
  );
  const logs = tabs.querySelector('#tab-logs');
  tabs.insertBefore(tab, logs);
  const panel = element('section', {
    id: 'page-history',
    role: 'tabpanel',
    'aria-labelledby': 'tab-history',
    'data-testid': 'page-history',
  });
  panel.hidden = true;
  main.insertBefore(panel, document.getElementById('page-logs'));
}

/**
 * What this computer gave: the last 24 hours per hour and the last 30 days per day, as charts (CPU given with tasks
 * completed; time contributing against stepped aside and paused), each with a sentence for screen readers and a
 * table to open. Loaded each time the panel is shown, so it is as fresh as the history store's last write.
 */
export class HistoryPage {
  readonly #api: RayAgentApi;
  readonly #panel: HTMLElement;
  #charts: Chart[] = [];
  #loading = false;

  constructor(api: RayAgentApi, panel = document.getElementById('page-history')) {
    if (!panel) throw new Error('The page is missing #page-history (mountHistoryTab first)');
    this.#api = api;
    this.#panel = panel;
    // The tabs only toggle `hidden`; watching it keeps the wiring in main.ts to one line.
    new MutationObserver(() => {
      if (!this.#panel.hidden) void this.refresh();
    }).observe(panel, { attributes: true, attributeFilter: ['hidden'] });
    if (!panel.hidden) void this.refresh();
  }

  async refresh(): Promise<void> {
    if (this.#loading) return;
    this.#loading = true;
    this.#panel.setAttribute('aria-busy', 'true');
    try {
      this.show(await this.#api['history:get'](), Date.now());
    } catch (error) {
      this.#clear();
      this.#panel.append(
        element('p', { class: 'card field-error', role: 'alert', 'data-testid': 'history-error' }, errorMessage(error)),
      );
      this.#panel.dataset.rendered = 'error';
    } finally {
      this.#loading = false;
      this.#panel.removeAttribute('aria-busy');
    }
  }

  show(doc: HistoryDocument, now: number): void {
    this.#clear();
    const views = VIEWS.map((view) => ({ view, buckets: view.buckets(doc, now) }));
    if (!views.some(({ buckets }) => hasAnything(buckets))) {
      this.#panel.append(
        element(
          'p',
          { class: 'card history-empty', 'data-testid': 'history-empty' },
          'Nothing recorded yet. Ray Agent keeps a record of what this computer gives, hour by hour, while it runs: ' +
            'come back once it has contributed for a while.',
        ),
      );
      this.#panel.dataset.rendered = 'empty';
      return;
    }
    for (const { view, buckets } of views) {
      const card = element('div', { class: 'card history', 'data-testid': `history-${view.id}` });
      const heading = element('h2', { id: `history-${view.id}-title` }, view.title);
      const summary = element(
        'p',
        { class: 'hint', 'data-testid': `history-${view.id}-summary` },
        cpuTimeSummary(buckets),
      );
      card.append(heading, summary);
      const charts: Array<[string, string, typeof cpuTasksChart]> = [
        ['cpu', `CPU given and tasks completed, per ${view.per}`, cpuTasksChart],
        ['time', `Time contributing, stepped aside and paused, per ${view.per}`, timeChart],
      ];
      for (const [kind, caption, draw] of charts) {
        const figure = element('figure', { class: 'chart' });
        const box = element('div', { class: 'chart-box' });
        const canvas = element('canvas', {
          role: 'img',
          'aria-label': `${caption}. ${summary.textContent} The table below holds the figures.`,
          'data-testid': `chart-${view.id}-${kind}`,
        });
        box.append(canvas);
        figure.append(element('figcaption', {}, caption), box);
        card.append(figure);
        this.#charts.push(draw(canvas, buckets, view.unit));
      }
      const details = element('details', { class: 'history-table' });
      details.append(
        element('summary', {}, `Show the ${view.title.toLowerCase()} as a table`),
        renderTable(view, buckets),
      );
      card.append(details);
      this.#panel.append(card);
    }
    this.#panel.dataset.rendered = 'charts';
  }

  #clear(): void {
    for (const chart of this.#charts) chart.destroy();
    this.#charts = [];
    this.#panel.replaceChildren();
    delete this.#panel.dataset.rendered;
  }
}
