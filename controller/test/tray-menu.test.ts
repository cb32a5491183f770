import { type StatusView, ViewPhase } from '@ray-agent/protocol';
import { describe, expect, it } from 'vitest';
import {
  stopActions,
  TRAY_ACTIONS,
  type TrayIcon,
  trayLikelyVisible,
  trayModel,
  windowBehaviour,
} from '../src/app/tray-menu.js';

function view(phase: ViewPhase, overrides: Partial<StatusView> = {}): StatusView {
  return {
    phase,
    headline: `Headline for ${phase}`,
    detail: null,
    contributing: phase === 'contributing',
    registration: { state: 'unregistered', providerId: null },
    heartbeat: { healthy: false, lastSuccessAt: null, failingSince: null, consecutiveFailures: 0 },
    runningTasks: 0,
    limits: null,
    agentVersion: null,
    updatedAt: '2025-01-01T00:00:00.000Z',
    ...overrides,
  };
}

// Every ViewPhase, with the icon expected when the person has contribution off and on, and whether the toggle works.
const TABLE: Record<ViewPhase, { off: TrayIcon; on: TrayIcon; toggle: boolean }> = {
  off: { off: 'off', on: 'off', toggle: true },
  'docker-missing': { off: 'off', on: 'attention', toggle: true },
  'docker-stopped': { off: 'off', on: 'attention', toggle: true },
  'docker-denied': { off: 'off', on: 'attention', toggle: true },
  pulling: { off: 'starting', on: 'starting', toggle: false },
  starting: { off: 'starting', on: 'starting', toggle: true },
  contributing: { off: 'contributing', on: 'contributing', toggle: true },
  reconnecting: { off: 'starting', on: 'starting', toggle: true },
  draining: { off: 'starting', on: 'starting', toggle: true },
  stopping: { off: 'starting', on: 'starting', toggle: false },
  unreachable: { off: 'attention', on: 'attention', toggle: true },
  'crash-looping': { off: 'attention', on: 'attention', toggle: true },
  outdated: { off: 'attention', on: 'attention', toggle: true },
  error: { off: 'attention', on: 'attention', toggle: true },
};

describe('trayModel: state in, menu out', () => {
  it('the table covers every ViewPhase', () => {
    expect(Object.keys(TABLE).sort()).toEqual([...ViewPhase.options].sort());
  });

  for (const phase of ViewPhase.options) {
    const expected = TABLE[phase];
    for (const contribute of [false, true]) {
      it(`${phase}, contribute ${contribute ? 'on' : 'off'}`, () => {
        const model = trayModel(view(phase), { contribute }, 'linux');
        expect(model.icon).toBe(contribute ? expected.on : expected.off);
        expect(model.tooltip).toBe(`Ray Agent: Headline for ${phase}`);
        expect(model.items.map((item) => item.id)).toEqual([
          'headline',
          'registration',
          'heartbeat',
          'tasks',
          'separator-status',
          'contribute',
          'pause-after-current',
          'stop-now',
          'open',
          'separator-quit',
          'quit',
        ]);
        const byId = new Map(model.items.map((item) => [item.id, item]));
        expect(byId.get('headline')).toMatchObject({ label: `Headline for ${phase}`, enabled: false });
        for (const id of ['registration', 'heartbeat', 'tasks']) expect(byId.get(id)?.enabled).toBe(false);
        expect(byId.get('contribute')).toMatchObject({
          label: 'Contribute compute',
          type: 'checkbox',
          checked: contribute,
          enabled: expected.toggle,
        });
        // Without a policy view the phase decides: pause while contributing, stop now also while draining.
        expect(byId.get('pause-after-current')).toMatchObject({
          label: 'Pause after current tasks',
          enabled: phase === 'contributing',
        });
        expect(byId.get('stop-now')).toMatchObject({
          label: 'Stop now',
          enabled: phase === 'contributing' || phase === 'draining',
        });
        expect(byId.get('open')?.label).toBe('Open Ray Agent');
        expect(byId.get('quit')?.label).toBe('Quit Ray Agent');
        expect(byId.get('open')?.enabled).not.toBe(false);
        expect(byId.get('quit')?.enabled).not.toBe(false);
      });
    }
  }

  it('status lines: registered provider, healthy heartbeat, task count', () => {
    const model = trayModel(
      view('contributing', {
        registration: { state: 'registered', providerId: 'prv-7f3a' },
        heartbeat: {
          healthy: true,
          lastSuccessAt: '2025-01-01T10:00:00.000Z',
          failingSince: null,
          consecutiveFailures: 0,
        },
        runningTasks: 3,
      }),
      { contribute: true },
      'darwin',
    );
    const labels = model.items.map((item) => item.label);
    expect(labels).toContain('Registered as prv-7f3a');
    expect(labels).toContain('Heartbeat healthy');
    expect(labels).toContain('3 tasks running');
  });

  it('status lines: not registered, failing heartbeat shown with local HH:MM, one task', () => {
    const failingSince = '2025-01-01T09:05:00.000Z';
    const at = new Date(failingSince);
    const hhmm = `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
    const model = trayModel(
      view('reconnecting', {
        heartbeat: { healthy: false, lastSuccessAt: null, failingSince, consecutiveFailures: 4 },
        runningTasks: 1,
      }),
      { contribute: true },
      'win32',
    );
    const labels = model.items.map((item) => item.label);
    expect(labels).toContain('Not registered');
    expect(labels).toContain(`Heartbeat failing since ${hhmm}`);
    expect(labels).toContain('1 task running');
  });

  it('registration states without a provider ID read as sentences', () => {
    const line = (state: string) =>
      trayModel(view('starting', { registration: { state, providerId: null } }), { contribute: true }, 'linux').items[1]
        ?.label;
    expect(line('registering')).toBe('Registering…');
    expect(line('rejected')).toBe('Registration rejected');
    expect(line('needs_reregistration')).toBe('Needs re-registration');
    expect(line('unregistered')).toBe('Not registered');
  });

  it('a long headline is cut to the 127 characters Windows shows, ending in an ellipsis', () => {
    const model = trayModel(view('error', { headline: 'x'.repeat(300) }), { contribute: true }, 'win32');
    expect(model.tooltip).toHaveLength(127);
    expect(model.tooltip.endsWith('…')).toBe(true);
  });
});

describe('windowBehaviour and tray visibility', () => {
  it('closing quits without a tray and hides with one, on every platform', () => {
    for (const platform of ['linux', 'darwin', 'win32'] as const) {
      expect(windowBehaviour(platform, false)).toEqual({ closeQuits: true });
      expect(windowBehaviour(platform, true)).toEqual({ closeQuits: false });
    }
  });

  it('Linux: plain GNOME and no desktop have no tray; KDE, XFCE and Ubuntu GNOME do; the override wins', () => {
    expect(trayLikelyVisible('linux', { XDG_CURRENT_DESKTOP: 'GNOME' })).toBe(false);
    expect(trayLikelyVisible('linux', {})).toBe(false);
    expect(trayLikelyVisible('linux', { XDG_CURRENT_DESKTOP: 'ubuntu:GNOME' })).toBe(true);
    expect(trayLikelyVisible('linux', { XDG_CURRENT_DESKTOP: 'KDE' })).toBe(true);
    expect(trayLikelyVisible('linux', { XDG_CURRENT_DESKTOP: 'XFCE' })).toBe(true);
    expect(trayLikelyVisible('linux', { XDG_CURRENT_DESKTOP: 'GNOME', RAY_AGENT_TRAY: '1' })).toBe(true);
    expect(trayLikelyVisible('linux', { XDG_CURRENT_DESKTOP: 'KDE', RAY_AGENT_TRAY: '0' })).toBe(false);
    expect(trayLikelyVisible('win32', {})).toBe(true);
    expect(trayLikelyVisible('darwin', {})).toBe(true);
  });
});

describe("the policy in the tray: its sentence and the person's stops", () => {
  const policy = (mode: 'contributing' | 'stepping-aside' | 'draining' | 'paused' | 'off', sentence: string) => ({
    mode,
    reason: mode === 'contributing' ? null : ('in-use' as const),
    sentence,
    since: '2025-01-01T00:00:00.000Z',
  });

  it('the policy sentence is a disabled status line right under the headline', () => {
    const model = trayModel(
      view('contributing', {
        headline: 'Contributing: 2 tasks running',
        policy: policy('stepping-aside', 'Stepping aside: you are using the computer; draining in 5 min'),
      }),
      { contribute: true },
      'linux',
    );
    expect(model.items[1]).toEqual({
      id: 'policy',
      label: 'Stepping aside: you are using the computer; draining in 5 min',
      type: 'normal',
      enabled: false,
    });
  });

  it('no policy line when the view has none, or when it repeats the headline', () => {
    expect(trayModel(view('off'), { contribute: false }, 'linux').items.some((item) => item.id === 'policy')).toBe(
      false,
    );
    const same = trayModel(
      view('off', {
        headline: 'Paused: on battery; will resume on AC power',
        policy: policy('paused', 'Paused: on battery; will resume on AC power'),
      }),
      { contribute: true },
      'linux',
    );
    expect(same.items.filter((item) => item.label.startsWith('Paused'))).toHaveLength(1);
  });

  const cases: Array<[Parameters<typeof policy>[0], { afterCurrent: boolean; now: boolean }]> = [
    ['contributing', { afterCurrent: true, now: true }],
    ['stepping-aside', { afterCurrent: true, now: true }],
    ['draining', { afterCurrent: false, now: true }],
    ['paused', { afterCurrent: false, now: false }],
    ['off', { afterCurrent: false, now: false }],
  ];
  for (const [mode, expected] of cases) {
    it(`policy ${mode}: pause ${expected.afterCurrent ? 'on' : 'off'}, stop now ${expected.now ? 'on' : 'off'}`, () => {
      // The phase says contributing throughout: the policy's mode decides when there is one.
      const v = view('contributing', { policy: policy(mode, `Policy ${mode}`) });
      expect(stopActions(v)).toEqual(expected);
      const byId = new Map(trayModel(v, { contribute: true }, 'win32').items.map((item) => [item.id, item]));
      expect(byId.get(TRAY_ACTIONS.pauseAfterCurrent)?.enabled).toBe(expected.afterCurrent);
      expect(byId.get(TRAY_ACTIONS.stopNow)?.enabled).toBe(expected.now);
    });
  }
});
