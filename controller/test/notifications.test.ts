import { type StatusView, ViewPhase } from '@ray-agent/protocol';
import { describe, expect, it } from 'vitest';
import { CLEAR_MS, Notifier } from '../src/app/notifications.js';
import { EXIT_REASONS } from '../src/app/view-model.js';

function view(phase: ViewPhase, overrides: Partial<StatusView> = {}): StatusView {
  return {
    phase,
    headline: `Headline for ${phase}`,
    detail: null,
    contributing: phase === 'contributing',
    registration: { state: 'registered', providerId: 'prv-1' },
    heartbeat: { healthy: true, lastSuccessAt: null, failingSince: null, consecutiveFailures: 0 },
    runningTasks: 0,
    limits: null,
    agentVersion: null,
    updatedAt: '2025-01-01T00:00:00.000Z',
    ...overrides,
  };
}

function setup(enabled = true) {
  const shown: Array<[string, string]> = [];
  let now = 1_000_000;
  let on = enabled;
  const notifier = new Notifier({
    enabled: () => on,
    show: (title, body) => shown.push([title, body]),
    now: () => now,
  });
  return {
    notifier,
    shown,
    bodies: () => shown.map(([, body]) => body),
    advance: (ms: number) => {
      now += ms;
    },
    setEnabled: (value: boolean) => {
      on = value;
    },
  };
}

const dockerStopped = () =>
  view('docker-stopped', { headline: 'Docker is not running', detail: 'Start Docker Desktop and try again.' });

describe('Notifier: only what the person must act on', () => {
  it('routine state changes never notify', () => {
    const { notifier, shown } = setup();
    for (const phase of [
      'off',
      'pulling',
      'starting',
      'contributing',
      'reconnecting',
      'draining',
      'stopping',
      'off',
    ] as const)
      notifier.observe(view(phase));
    notifier.observe(view('contributing', { update: { state: 'pulling', sentence: 'Downloading a newer agent' } }));
    notifier.observe(view('contributing', { update: { state: 'switching', sentence: 'Switching to the new agent' } }));
    expect(shown).toEqual([]);
  });

  it('engine gone while contributing: once, with the fix; not again while it stays gone', () => {
    const { notifier, shown } = setup();
    notifier.observe(view('contributing'));
    notifier.observe(dockerStopped());
    notifier.observe(dockerStopped());
    notifier.observe(view('docker-missing', { headline: 'Docker is not installed' }));
    expect(shown).toEqual([
      [
        'Ray Agent',
        'Docker is not running. Ray Agent cannot contribute until it is back. Start Docker Desktop and try again.',
      ],
    ]);
  });

  it('no engine at start, or the engine going while not contributing: no notice', () => {
    const first = setup();
    first.notifier.observe(dockerStopped());
    expect(first.shown).toEqual([]);
    const off = setup();
    off.notifier.observe(view('off'));
    off.notifier.observe(dockerStopped());
    expect(off.shown).toEqual([]);
  });

  it('a condition notifies again only after it has been clear for CLEAR_MS', () => {
    const { notifier, bodies, advance } = setup();
    notifier.observe(view('contributing'));
    notifier.observe(dockerStopped());
    // Back for a moment, then gone again: a flap, not a new condition.
    notifier.observe(view('contributing'));
    advance(CLEAR_MS / 2);
    notifier.observe(dockerStopped());
    expect(bodies()).toHaveLength(1);
    // Back for good, then gone again later: a new notice.
    notifier.observe(view('contributing'));
    advance(CLEAR_MS);
    notifier.observe(view('contributing'));
    expect(notifier.active).toEqual([]);
    notifier.observe(dockerStopped());
    expect(bodies()).toHaveLength(2);
  });

  it('token refused: registration rejected, needing re-registration, or the agent exiting for it', () => {
    for (const overrides of [
      { registration: { state: 'rejected', providerId: null } },
      { registration: { state: 'needs_reregistration', providerId: null } },
    ] satisfies Partial<StatusView>[]) {
      const { notifier, bodies } = setup();
      notifier.observe(view('error', overrides));
      notifier.observe(view('error', overrides));
      expect(bodies()).toEqual([
        'The manager refused the enrollment token: paste a new token from the cluster operator in Settings.',
      ]);
    }
    // Exit code 3 brings a crash loop whose detail says why: one notice, about the token, not about crashes.
    const { notifier, bodies } = setup();
    notifier.observe(
      view('crash-looping', {
        detail: EXIT_REASONS[3] ?? null,
        registration: { state: 'unregistered', providerId: null },
      }),
    );
    expect(bodies()).toEqual([
      'The manager refused the enrollment token: paste a new token from the cluster operator in Settings.',
    ]);
  });

  it('repeated crashes: once while crash-looping, with the reason', () => {
    const { notifier, bodies } = setup();
    notifier.observe(view('contributing'));
    const looping = view('crash-looping', {
      detail: 'The agent ran out of memory (limit 4 GiB): give it more memory in Settings, or run fewer tasks at once.',
    });
    notifier.observe(looping);
    notifier.observe(view('starting'));
    notifier.observe(looping);
    expect(bodies()).toEqual([
      'The agent keeps restarting. The agent ran out of memory (limit 4 GiB): give it more memory in Settings, or run fewer tasks at once.',
    ]);
  });

  it('an update rolled back: once from the view, and the event does not repeat it', () => {
    const { notifier, bodies } = setup();
    const sentence = 'The new agent image ray-agent:dev did not reach contributing; went back to the previous one.';
    notifier.observe(view('contributing', { update: { state: 'rolled-back', sentence } }));
    notifier.observe(view('contributing', { update: { state: 'rolled-back', sentence } }));
    notifier.event('update-rolled-back', sentence);
    expect(bodies()).toEqual([sentence]);
  });

  it('event() notifies a condition the view does not carry, once', () => {
    const { notifier, bodies } = setup();
    notifier.event('update-rolled-back', 'Rolled back to the previous agent image.');
    notifier.event('update-rolled-back', 'Rolled back to the previous agent image.');
    expect(bodies()).toEqual(['Rolled back to the previous agent image.']);
  });

  it('silenced by the setting: nothing is shown, and a condition already seen is not shown when turned back on', () => {
    const { notifier, shown, setEnabled } = setup(false);
    notifier.observe(view('contributing'));
    notifier.observe(dockerStopped());
    notifier.observe(view('crash-looping'));
    expect(shown).toEqual([]);
    setEnabled(true);
    notifier.observe(view('crash-looping'));
    expect(shown).toEqual([]);
    notifier.observe(view('error', { registration: { state: 'rejected', providerId: null } }));
    expect(shown).toHaveLength(1);
  });

  it('a show() that throws (no notification service) does not break observing', () => {
    const notifier = new Notifier({
      enabled: () => true,
      show: () => {
        throw new Error('no notification daemon');
      },
    });
    expect(() => notifier.observe(view('crash-looping'))).not.toThrow();
  });

  it('every phase alone (no history) notifies at most crash-looping', () => {
    for (const phase of ViewPhase.options) {
      const { notifier, shown } = setup();
      notifier.observe(view(phase));
      expect(shown.length).toBe(phase === 'crash-looping' ? 1 : 0);
    }
  });
});
