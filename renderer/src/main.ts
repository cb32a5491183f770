import { rayAgentApi } from './api.js';
import { byTestId, errorMessage, setText, show } from './dom.js';
import { HistoryPage, mountHistoryTab } from './history-page.js';
import { LeaveCluster } from './leave-cluster.js';
import { LogView } from './log-view.js';
import { SettingsPage } from './settings-page.js';
import { StatusPage } from './status-page.js';

const TABS = ['status', 'settings', 'history', 'logs'] as const;

function selectTab(name: (typeof TABS)[number], focus = false): void {
  for (const tab of TABS) {
    const button = byTestId<HTMLButtonElement>(`tab-${tab}`);
    const selected = tab === name;
    button.setAttribute('aria-selected', String(selected));
    button.tabIndex = selected ? 0 : -1;
    show(`page-${tab}`, selected);
    if (selected && focus) button.focus();
  }
}

function setUpTabs(): void {
  TABS.forEach((tab, index) => {
    const button = byTestId<HTMLButtonElement>(`tab-${tab}`);
    button.addEventListener('click', () => selectTab(tab));
    // WAI-ARIA tabs: arrow keys move between tabs.
    button.addEventListener('keydown', (event) => {
      const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
      if (step === 0) return;
      event.preventDefault();
      const next = TABS[(index + step + TABS.length) % TABS.length];
      if (next) selectTab(next, true);
    });
  });
  selectTab('status');
}

function showNotice(text: string): void {
  setText('notice-text', text);
  show('notice', true);
}

async function start(): Promise<void> {
  mountHistoryTab();
  setUpTabs();
  byTestId('notice-dismiss').addEventListener('click', () => show('notice', false));
  const api = rayAgentApi();
  if (!api) {
    setText('status-headline', 'This page runs inside the Ray Agent app.');
    return;
  }
  const status = new StatusPage(api);
  const settings = new SettingsPage(api, (saved) => status.showSettings(saved));
  new LeaveCluster(api, (left) => {
    settings.fill(left);
    status.showSettings(left);
  });

  // Subscribe before the first reads so nothing that happens in between is missed.
  api.on('notice', showNotice);
  api.on('pull:progress', (progress) => status.showPull(progress));
  api.on('status:changed', (view) => {
    status.showStatus(view);
    // The tray may have flipped "Contribute compute": keep the switch in step with the saved choice.
    api['settings:get']().then((current) => status.showSettings(current), reportError);
  });
  new LogView(api);
  new HistoryPage(api);

  const [view, current] = await Promise.all([api['status:get'](), api['settings:get']()]);
  status.showStatus(view);
  status.showSettings(current);
  settings.fill(current);
  api['limits:get']().then(
    (limits) => settings.applyLimits(limits),
    (error) => settings.limitsUnavailable(error),
  );
  api['token:get-state']().then((state) => settings.showTokenState(state), reportError);
  document.body.dataset.ready = 'true';
}

function reportError(error: unknown): void {
  showNotice(errorMessage(error));
}

start().catch(reportError);
