import type { Settings, StatusView, ViewPhase } from '@ray-agent/protocol';

/**
 * The tray menu as plain data: the Electron shell turns it into `Menu.buildFromTemplate` on every status change.
 * Keeping it free of `electron` lets it be tested here, where Electron cannot run.
 */
export type TrayIcon = 'off' | 'starting' | 'contributing' | 'attention';

export interface TrayItem {
  id: string;
  label: string;
  type?: 'normal' | 'checkbox' | 'separator';
  checked?: boolean;
  enabled?: boolean;
}

export interface TrayModel {
  icon: TrayIcon;
  tooltip: string;
  items: TrayItem[];
}

/** Item ids the shell attaches actions to. */
export const TRAY_ACTIONS = {
  contribute: 'contribute',
  pauseAfterCurrent: 'pause-after-current',
  stopNow: 'stop-now',
  open: 'open',
  quit: 'quit',
} as const;

const BUSY: ReadonlySet<ViewPhase> = new Set(['pulling', 'starting', 'reconnecting', 'draining', 'stopping']);
const FAULT: ReadonlySet<ViewPhase> = new Set(['error', 'unreachable', 'crash-looping', 'outdated']);
const DOCKER: ReadonlySet<ViewPhase> = new Set(['docker-missing', 'docker-stopped', 'docker-denied']);
/** A toggle mid-stop or mid-pull would race the operation in flight. */
const TOGGLE_LOCKED: ReadonlySet<ViewPhase> = new Set(['stopping', 'pulling']);

/** Windows truncates tray tooltips past 127 characters; cut them ourselves so the end is a visible ellipsis. */
const TOOLTIP_MAX = 127;

export function trayIcon(phase: ViewPhase, contribute: boolean): TrayIcon {
  if (phase === 'contributing') return 'contributing';
  if (BUSY.has(phase)) return 'starting';
  if (FAULT.has(phase)) return 'attention';
  // A missing or stopped Docker only needs the person when they asked to contribute.
  if (DOCKER.has(phase)) return contribute ? 'attention' : 'off';
  return 'off';
}

function hhmm(iso: string): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
}

export function registrationLine(registration: StatusView['registration']): string {
  if (registration.providerId) return `Registered as ${registration.providerId}`;
  switch (registration.state) {
    case 'registering':
      return 'Registering…';
    case 'rejected':
      return 'Registration rejected';
    case 'needs_reregistration':
      return 'Needs re-registration';
    default:
      return 'Not registered';
  }
}

export function heartbeatLine(heartbeat: StatusView['heartbeat']): string {
  if (heartbeat.healthy) return 'Heartbeat healthy';
  if (heartbeat.failingSince) return `Heartbeat failing since ${hhmm(heartbeat.failingSince)}`;
  return 'No heartbeat';
}

export function tasksLine(count: number): string {
  return count === 1 ? '1 task running' : `${count} tasks running`;
}

/**
 * Whether the person's stops make sense now. "Pause after current tasks" while the node takes or runs work
 * (contributing, or stepping aside with tasks running slowly); "Stop now" also during a drain, to end its wait.
 * Without a policy view (an older controller) the phase decides.
 */
export function stopActions(view: StatusView): { afterCurrent: boolean; now: boolean } {
  const mode = view.policy?.mode;
  const running = mode ? mode === 'contributing' || mode === 'stepping-aside' : view.phase === 'contributing';
  const draining = mode ? mode === 'draining' : view.phase === 'draining';
  return { afterCurrent: running, now: running || draining };
}

export function trayModel(
  view: StatusView,
  settings: Pick<Settings, 'contribute'>,
  // Part of the contract so platform-specific wording can come without touching callers; the same words serve all today.
  _platform: NodeJS.Platform,
): TrayModel {
  const tooltipText = `Ray Agent: ${view.headline}`;
  const tooltip = tooltipText.length > TOOLTIP_MAX ? `${tooltipText.slice(0, TOOLTIP_MAX - 1)}…` : tooltipText;
  const status = (id: string, label: string): TrayItem => ({ id, label, type: 'normal', enabled: false });
  const stops = stopActions(view);
  // The policy's sentence only when it says something the headline does not.
  const policy = view.policy && view.policy.sentence !== view.headline ? [status('policy', view.policy.sentence)] : [];
  return {
    icon: trayIcon(view.phase, settings.contribute),
    tooltip,
    items: [
      status('headline', view.headline),
      ...policy,
      status('registration', registrationLine(view.registration)),
      status('heartbeat', heartbeatLine(view.heartbeat)),
      status('tasks', tasksLine(view.runningTasks)),
      { id: 'separator-status', label: '', type: 'separator' },
      {
        id: TRAY_ACTIONS.contribute,
        label: 'Contribute compute',
        type: 'checkbox',
        checked: settings.contribute,
        enabled: !TOGGLE_LOCKED.has(view.phase),
      },
      {
        id: TRAY_ACTIONS.pauseAfterCurrent,
        label: 'Pause after current tasks',
        type: 'normal',
        enabled: stops.afterCurrent,
      },
      { id: TRAY_ACTIONS.stopNow, label: 'Stop now', type: 'normal', enabled: stops.now },
      { id: TRAY_ACTIONS.open, label: 'Open Ray Agent', type: 'normal' },
      { id: 'separator-quit', label: '', type: 'separator' },
      { id: TRAY_ACTIONS.quit, label: 'Quit Ray Agent', type: 'normal' },
    ],
  };
}

/**
 * What closing the window does. Without a tray (Linux desktops without a StatusNotifier host, or the tray failed to
 * appear) a hidden window could never be reached again, so closing quits; with a tray it hides.
 */
export function windowBehaviour(_platform: NodeJS.Platform, trayAvailable: boolean): { closeQuits: boolean } {
  return { closeQuits: !trayAvailable };
}

/**
 * Whether a tray icon will be visible. Windows and macOS always show one. On Linux Electron's Tray needs a
 * StatusNotifier host, which plain GNOME lacks (Ubuntu's GNOME ships the AppIndicator extension) and a session
 * without a desktop lacks; Electron cannot tell, so this decides from the desktop name. RAY_AGENT_TRAY=0/1 overrides.
 */
export function trayLikelyVisible(platform: NodeJS.Platform, env: Record<string, string | undefined>): boolean {
  if (env.RAY_AGENT_TRAY === '0') return false;
  if (env.RAY_AGENT_TRAY === '1') return true;
  if (platform !== 'linux') return true;
  const desktops = (env.XDG_CURRENT_DESKTOP ?? '').toLowerCase().split(':').filter(Boolean);
  if (desktops.length === 0) return false;
  if (desktops.includes('gnome') && !desktops.includes('ubuntu')) return false;
  return true;
}
