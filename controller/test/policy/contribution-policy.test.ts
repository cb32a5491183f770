import {
  type ContributionPolicy,
  DEFAULT_POLICY,
  defaultWeeklyHours,
  type PolicyMode,
  type PolicyReason,
  type PolicySignals,
  PolicyView,
  type StopMode,
} from '@ray-agent/protocol';
import { describe, expect, test } from 'vitest';
import {
  decide,
  initialPolicyState,
  type PolicyDecision,
  type PolicyState,
} from '../../src/policy/contribution-policy.js';
import { nextScheduleHour } from '../../src/policy/policy-sentence.js';
import type { PolicyTarget } from '../../src/policy/policy-target.js';

const T0 = Date.parse('2026-01-05T12:00:00Z');
const MIN = 60_000;
const FULL: PolicyTarget = { kind: 'full' };
const throttled = (fraction: number): PolicyTarget => ({ kind: 'throttled', cpuFraction: fraction });
const POLICY_STOP: PolicyTarget = { kind: 'stopped', stop: { how: 'drain', deadlineSeconds: null, reason: 'policy' } };
const PAUSE_STOP: PolicyTarget = { kind: 'stopped', stop: { how: 'drain', deadlineSeconds: null, reason: 'pause' } };
const goingAwayStop = (reason: 'suspend' | 'shutdown', seconds = 20): PolicyTarget => ({
  kind: 'stopped',
  stop: { how: 'drain', deadlineSeconds: seconds, reason },
});

/** The defaults with battery rules off, so each test turns on only what it is about. */
function policy(overrides: Partial<ContributionPolicy> = {}): ContributionPolicy {
  return { ...DEFAULT_POLICY, battery: { pauseOnBattery: false, minPercent: 0 }, ...overrides };
}
const idlePolicy = (extra: Partial<ContributionPolicy> = {}) =>
  policy({ idle: { enabled: true, minutes: 5 }, graceMinutes: 5, throttlePercent: 10, ...extra });

interface Step {
  /** Minutes after T0. */
  at: number;
  signals?: Partial<PolicySignals>;
  policy?: ContributionPolicy;
  contribute?: boolean;
  stopMode?: StopMode | null;
  mode: PolicyMode;
  reason?: PolicyReason | null;
  target?: PolicyTarget;
  sentence?: string | RegExp;
}

/** Runs decisions in order, each from the state the previous one left; checks every step. */
function run(steps: Step[], base: ContributionPolicy, start: PolicyState = initialPolicyState(T0)): PolicyDecision[] {
  let state = start;
  let current = base;
  const decisions: PolicyDecision[] = [];
  for (const [index, step] of steps.entries()) {
    current = step.policy ?? current;
    const decision = decide(
      {
        policy: current,
        contribute: step.contribute ?? true,
        stopMode: step.stopMode ?? null,
        signals: signals({ nowMs: T0 + step.at * MIN, ...step.signals }),
      },
      state,
    );
    const label = `step ${index} at ${step.at} min`;
    expect(decision.view.mode, label).toBe(step.mode);
    expect(decision.state.mode, label).toBe(step.mode);
    if (step.reason !== undefined) expect(decision.view.reason, label).toBe(step.reason);
    if (step.target !== undefined) expect(decision.target, label).toEqual(step.target);
    if (typeof step.sentence === 'string') expect(decision.view.sentence, label).toBe(step.sentence);
    if (step.sentence instanceof RegExp) expect(decision.view.sentence, label).toMatch(step.sentence);
    expect(PolicyView.safeParse(decision.view).success, label).toBe(true);
    decisions.push(decision);
    state = decision.state;
  }
  return decisions;
}

/** Monday 12:00, idle for an hour, on AC, full battery, not going away. */
function signals(overrides: Partial<PolicySignals> = {}): PolicySignals {
  return {
    nowMs: T0,
    weekday: 1,
    hour: 12,
    idleSeconds: 3600,
    onBattery: false,
    batteryPercent: 100,
    goingAway: null,
    ...overrides,
  };
}

/** A state as if the engine had reached `mode` at T0 (for "from every mode" tables). */
function stateIn(mode: PolicyMode): PolicyState {
  const base = initialPolicyState(T0);
  if (mode === 'contributing') return run([{ at: 0, mode }], policy())[0]?.state ?? base;
  if (mode === 'stepping-aside') {
    return run(
      [
        { at: 0, mode: 'contributing' },
        { at: 0, signals: { idleSeconds: 1 }, mode },
      ],
      idlePolicy(),
    )[1]?.state as PolicyState;
  }
  if (mode === 'paused') return run([{ at: 0, signals: { idleSeconds: 1 }, mode }], idlePolicy())[0]?.state ?? base;
  if (mode === 'off') return run([{ at: 0, contribute: false, mode }], policy())[0]?.state ?? base;
  return run([{ at: 0, signals: { goingAway: 'suspend' }, mode }], policy())[0]?.state ?? base;
}

describe('contributing without conditions', () => {
  test('always on: full power', () => {
    run(
      [{ at: 0, mode: 'contributing', reason: null, target: FULL, sentence: 'Contributing: at full power' }],
      policy(),
    );
  });

  test('the first decision with every condition clear contributes; with one blocking it pauses, never throttles', () => {
    run([{ at: 0, mode: 'contributing', target: FULL }], idlePolicy());
    run([{ at: 0, signals: { idleSeconds: 10 }, mode: 'paused', target: POLICY_STOP }], idlePolicy());
  });
});

describe('idle: step aside, grace, drain, resume', () => {
  test('contributing -> the person returns -> throttled at once -> grace runs out -> drained', () => {
    run(
      [
        {
          at: 0,
          signals: { idleSeconds: 720 },
          mode: 'contributing',
          target: FULL,
          sentence: 'Contributing: idle for 12 min',
        },
        {
          at: 1,
          signals: { idleSeconds: 2 },
          mode: 'stepping-aside',
          reason: 'in-use',
          target: throttled(0.1),
          sentence: 'Stepping aside: you are using the computer; draining in 5 min unless it is idle again',
        },
        {
          at: 5.5,
          signals: { idleSeconds: 5 },
          mode: 'stepping-aside',
          target: throttled(0.1),
          sentence: 'Stepping aside: you are using the computer; draining in 1 min unless it is idle again',
        },
        {
          at: 6,
          signals: { idleSeconds: 1 },
          mode: 'paused',
          reason: 'in-use',
          target: POLICY_STOP,
          sentence: 'Paused: you are using the computer; will resume once it has been idle for 5 min',
        },
        // Paused and still in use: stays stopped, no flapping back to a throttle.
        { at: 8, signals: { idleSeconds: 100 }, mode: 'paused', target: POLICY_STOP },
        { at: 30, signals: { idleSeconds: 299 }, mode: 'paused', target: POLICY_STOP },
        // Idle long enough again: starts again.
        { at: 31, signals: { idleSeconds: 300 }, mode: 'contributing', reason: null, target: FULL },
      ],
      idlePolicy(),
    );
  });

  test('the grace clock counts from when stepping aside began, not from the last input', () => {
    const decisions = run(
      [
        { at: 0, mode: 'contributing' },
        { at: 1, signals: { idleSeconds: 0 }, mode: 'stepping-aside' },
        { at: 3, signals: { idleSeconds: 0 }, mode: 'stepping-aside' },
        { at: 5.9, signals: { idleSeconds: 0 }, mode: 'stepping-aside' },
        { at: 6, signals: { idleSeconds: 0 }, mode: 'paused' },
      ],
      idlePolicy(),
    );
    expect(decisions[2]?.state.steppedAsideAtMs).toBe(T0 + MIN);
  });

  test('stepping aside -> idle again before the grace ends -> full power at once', () => {
    run(
      [
        { at: 0, mode: 'contributing' },
        { at: 1, signals: { idleSeconds: 3 }, mode: 'stepping-aside', target: throttled(0.1) },
        { at: 4, signals: { idleSeconds: 300 }, mode: 'contributing', target: FULL },
        // A new stepping aside gets a whole new grace period.
        { at: 5, signals: { idleSeconds: 1 }, mode: 'stepping-aside', sentence: /draining in 5 min/ },
        { at: 9.5, signals: { idleSeconds: 1 }, mode: 'stepping-aside' },
      ],
      idlePolicy(),
    );
  });

  test('idle hysteresis: idle again needs the whole idle time, coming back needs one input', () => {
    run(
      [
        { at: 0, signals: { idleSeconds: 600 }, mode: 'contributing' },
        { at: 0.1, signals: { idleSeconds: 0 }, mode: 'stepping-aside' },
        { at: 3, signals: { idleSeconds: 170 }, mode: 'stepping-aside' },
        { at: 4, signals: { idleSeconds: 299 }, mode: 'stepping-aside' },
        { at: 4.1, signals: { idleSeconds: 305 }, mode: 'contributing' },
        { at: 4.2, signals: { idleSeconds: 1 }, mode: 'stepping-aside' },
      ],
      idlePolicy(),
    );
  });

  test('grace 0 drains at once; the throttle share follows the setting', () => {
    run(
      [
        { at: 0, mode: 'contributing' },
        { at: 1, signals: { idleSeconds: 1 }, mode: 'paused', reason: 'in-use', target: POLICY_STOP },
      ],
      idlePolicy({ graceMinutes: 0 }),
    );
    run(
      [
        { at: 0, mode: 'contributing' },
        { at: 1, signals: { idleSeconds: 1 }, mode: 'stepping-aside', target: throttled(0.25) },
      ],
      idlePolicy({ throttlePercent: 25 }),
    );
  });

  test('a shorter grace set while stepping aside takes effect on the next decision', () => {
    run(
      [
        { at: 0, mode: 'contributing' },
        { at: 1, signals: { idleSeconds: 1 }, mode: 'stepping-aside' },
        { at: 3, signals: { idleSeconds: 1 }, policy: idlePolicy({ graceMinutes: 1 }), mode: 'paused' },
      ],
      idlePolicy(),
    );
  });

  test('a clock that goes back keeps stepping aside; one that jumps forward (sleep) ends the grace', () => {
    run(
      [
        { at: 10, mode: 'contributing' },
        { at: 11, signals: { idleSeconds: 1 }, mode: 'stepping-aside' },
        { at: 2, signals: { idleSeconds: 1 }, mode: 'stepping-aside', sentence: /draining in 5 min/ },
        { at: 300, signals: { idleSeconds: 1 }, mode: 'paused' },
      ],
      idlePolicy(),
    );
  });

  test('idle time unknown: the rule does not apply, and the sentence says so once', () => {
    const [decision] = run(
      [
        {
          at: 0,
          signals: { idleSeconds: null },
          mode: 'contributing',
          target: FULL,
          sentence: 'Contributing: at full power (idle time unknown on this machine)',
        },
      ],
      idlePolicy(),
    );
    expect(decision?.view.sentence.split('idle time unknown').length).toBe(2);
    run(
      [
        {
          at: 0,
          signals: { idleSeconds: null, onBattery: true },
          mode: 'paused',
          sentence: 'Paused: on battery; will resume on AC power (idle time unknown on this machine)',
        },
      ],
      idlePolicy({ battery: { pauseOnBattery: true, minPercent: 0 } }),
    );
  });
});

describe('schedule', () => {
  const scheduled = policy({ schedule: { enabled: true, hours: defaultWeeklyHours() }, graceMinutes: 5 });

  test('boundaries: 17:00 on a weekday is outside, 18:00 inside, 08:00 outside again', () => {
    run(
      [
        {
          at: 0,
          signals: { weekday: 1, hour: 17 },
          mode: 'paused',
          reason: 'outside-schedule',
          target: POLICY_STOP,
          sentence: 'Paused: outside the schedule; will resume Mon 18:00',
        },
        {
          at: 60,
          signals: { weekday: 1, hour: 18 },
          mode: 'contributing',
          target: FULL,
          sentence: 'Contributing: inside the schedule until Tue 08:00',
        },
        { at: 60 * 14, signals: { weekday: 2, hour: 7 }, mode: 'contributing' },
        {
          at: 60 * 15,
          signals: { weekday: 2, hour: 8 },
          mode: 'stepping-aside',
          reason: 'outside-schedule',
          target: throttled(0.1),
          sentence: 'Stepping aside: outside the schedule; draining in 5 min unless the schedule allows it again',
        },
        { at: 60 * 15 + 5, signals: { weekday: 2, hour: 8 }, mode: 'paused', target: POLICY_STOP },
      ],
      scheduled,
    );
  });

  test('the weekend runs from Friday evening to Monday 08:00', () => {
    run([{ at: 0, signals: { weekday: 5, hour: 23 }, mode: 'contributing', sentence: /until Mon 08:00$/ }], scheduled);
    run([{ at: 0, signals: { weekday: 6, hour: 12 }, mode: 'contributing', sentence: /until Mon 08:00$/ }], scheduled);
    run([{ at: 0, signals: { weekday: 5, hour: 12 }, mode: 'paused', sentence: /will resume Fri 18:00$/ }], scheduled);
  });

  test('Saturday -> Sunday and the end of the week wrap', () => {
    const hours = defaultWeeklyHours().map((day) => day.map(() => false));
    (hours[0] as boolean[])[0] = true; // Sunday 00:00 only
    const sundayOnly = policy({ schedule: { enabled: true, hours } });
    run(
      [
        {
          at: 0,
          signals: { weekday: 6, hour: 23 },
          mode: 'paused',
          sentence: 'Paused: outside the schedule; will resume Sun 00:00',
        },
        {
          at: 60,
          signals: { weekday: 0, hour: 0 },
          mode: 'contributing',
          sentence: 'Contributing: inside the schedule until Sun 01:00',
        },
        // Past the hour: next week's Sunday.
        { at: 120, signals: { weekday: 0, hour: 1 }, mode: 'stepping-aside', reason: 'outside-schedule' },
      ],
      sundayOnly,
    );
    expect(nextScheduleHour(hours, { weekday: 0, hour: 0 }, true)).toEqual({ weekday: 0, hour: 0 });
    expect(nextScheduleHour(hours, { weekday: 6, hour: 23 }, true)).toEqual({ weekday: 0, hour: 0 });
  });

  test('an empty grid never contributes and says the schedule has no hours; a full one never ends', () => {
    const empty = defaultWeeklyHours().map((day) => day.map(() => false));
    run(
      [
        {
          at: 0,
          mode: 'paused',
          reason: 'outside-schedule',
          sentence: 'Paused: the schedule has no hours; will resume once hours are marked in the schedule',
        },
      ],
      policy({ schedule: { enabled: true, hours: empty } }),
    );
    const full = defaultWeeklyHours().map((day) => day.map(() => true));
    run(
      [{ at: 0, mode: 'contributing', sentence: 'Contributing: inside the schedule' }],
      policy({ schedule: { enabled: true, hours: full } }),
    );
    // Off: the grid is not read at all.
    run([{ at: 0, mode: 'contributing' }], policy({ schedule: { enabled: false, hours: empty } }));
  });
});

describe('battery', () => {
  test('on battery steps aside and pauses; AC power resumes; the rule off or unknown lets it run', () => {
    const onBattery = policy({ battery: { pauseOnBattery: true, minPercent: 0 }, graceMinutes: 2 });
    run(
      [
        { at: 0, mode: 'contributing' },
        {
          at: 1,
          signals: { onBattery: true },
          mode: 'stepping-aside',
          reason: 'on-battery',
          sentence: 'Stepping aside: on battery; draining in 2 min unless it is on AC power again',
        },
        {
          at: 3,
          signals: { onBattery: true },
          mode: 'paused',
          reason: 'on-battery',
          target: POLICY_STOP,
          sentence: 'Paused: on battery; will resume on AC power',
        },
        { at: 4, signals: { onBattery: false }, mode: 'contributing', target: FULL },
        {
          at: 5,
          signals: { onBattery: null },
          mode: 'contributing',
          sentence: 'Contributing: at full power (power source unknown on this machine)',
        },
      ],
      onBattery,
    );
    run([{ at: 0, signals: { onBattery: true }, mode: 'contributing' }], policy());
  });

  test('the floor latches below the minimum and releases only at minimum + 5', () => {
    const floor = policy({ battery: { pauseOnBattery: false, minPercent: 30 }, graceMinutes: 1 });
    run(
      [
        { at: 0, signals: { batteryPercent: 31, onBattery: true }, mode: 'contributing' },
        { at: 0.5, signals: { batteryPercent: 30, onBattery: true }, mode: 'contributing' },
        {
          at: 1,
          signals: { batteryPercent: 29, onBattery: true },
          mode: 'stepping-aside',
          reason: 'low-battery',
          sentence: 'Stepping aside: battery at 29 %; draining in 1 min unless the battery reaches 35 %',
        },
        {
          at: 3,
          signals: { batteryPercent: 22, onBattery: true },
          mode: 'paused',
          sentence: 'Paused: battery at 22 %; will resume at 35 %',
        },
        // Charging past the floor is not enough: the latch holds until 35 %.
        { at: 20, signals: { batteryPercent: 31, onBattery: false }, mode: 'paused', reason: 'low-battery' },
        { at: 25, signals: { batteryPercent: 34.9, onBattery: false }, mode: 'paused' },
        { at: 30, signals: { batteryPercent: 35, onBattery: false }, mode: 'contributing', target: FULL },
        { at: 31, signals: { batteryPercent: 33, onBattery: false }, mode: 'contributing' },
      ],
      floor,
    );
  });

  test('a floor of 0 or an unknown level is no rule', () => {
    run([{ at: 0, signals: { batteryPercent: 1, onBattery: true }, mode: 'contributing' }], policy());
    const floor = policy({ battery: { pauseOnBattery: false, minPercent: 30 } });
    const [low] = run([{ at: 0, signals: { batteryPercent: 10 }, mode: 'paused' }], floor);
    // The level becomes unknown: the latch lets go, the rule stops applying.
    run([{ at: 1, signals: { batteryPercent: null }, mode: 'contributing' }], floor, low?.state);
  });

  test('on battery below the floor reads as one condition', () => {
    run(
      [
        {
          at: 0,
          signals: { batteryPercent: 22, onBattery: true },
          mode: 'paused',
          reason: 'on-battery',
          sentence: 'Paused: on battery at 22 %; will resume on AC power at 35 %',
        },
      ],
      policy({ battery: { pauseOnBattery: true, minPercent: 30 } }),
    );
  });
});

describe('the machine going away', () => {
  const everyMode: PolicyMode[] = ['contributing', 'stepping-aside', 'paused', 'draining'];
  for (const from of everyMode) {
    for (const goingAway of ['suspend', 'shutdown'] as const) {
      test(`${goingAway} from ${from}: drained at once with the going-away deadline, no grace`, () => {
        run(
          [
            {
              at: 0.5,
              signals: { goingAway, idleSeconds: 1 },
              mode: 'draining',
              reason: goingAway,
              target: goingAwayStop(goingAway, 45),
              sentence:
                goingAway === 'suspend'
                  ? 'Draining: the computer is going to sleep'
                  : 'Draining: the computer is shutting down',
            },
          ],
          idlePolicy({ goingAwayDrainSeconds: 45, graceMinutes: 240 }),
          stateIn(from),
        );
      });
    }
  }

  test('off stays off when the machine goes away: the person’s stop stands', () => {
    run(
      [{ at: 0.5, contribute: false, signals: { goingAway: 'shutdown' }, mode: 'off', target: PAUSE_STOP }],
      policy(),
      stateIn('off'),
    );
  });

  test('back from sleep: contributes when clear, stays paused (not throttled) when a condition blocks', () => {
    run(
      [
        { at: 0, mode: 'contributing' },
        { at: 1, signals: { goingAway: 'suspend' }, mode: 'draining', target: goingAwayStop('suspend') },
        { at: 60, mode: 'contributing', target: FULL },
        { at: 61, signals: { goingAway: 'suspend' }, mode: 'draining' },
        { at: 120, signals: { idleSeconds: 2 }, mode: 'paused', reason: 'in-use', target: POLICY_STOP },
      ],
      idlePolicy(),
    );
  });
});

describe('the person’s switch', () => {
  test.each([
    [null, 'off', PAUSE_STOP, 'Off: contributing is switched off'],
    [
      'after-current',
      'paused',
      PAUSE_STOP,
      'Off: paused by you after the running tasks finish; turn contributing on to resume',
    ],
    ['now', 'paused', { kind: 'stopped', stop: { how: 'now' } }, 'Off: stopped by you; turn contributing on to resume'],
  ] as const)('contribute off with stop mode %s', (stopMode, reason, target, sentence) => {
    for (const from of ['contributing', 'stepping-aside', 'paused', 'draining', 'off'] as const) {
      run([{ at: 1, contribute: false, stopMode, mode: 'off', reason, target, sentence }], idlePolicy(), stateIn(from));
    }
  });

  test('the stop mode only matters while off; switching on again follows the conditions', () => {
    run([{ at: 0, stopMode: 'now', mode: 'contributing', target: FULL }], policy());
    run(
      [
        { at: 0, contribute: false, stopMode: 'now', mode: 'off' },
        { at: 1, signals: { idleSeconds: 1 }, mode: 'paused', reason: 'in-use', target: POLICY_STOP },
        { at: 2, contribute: false, mode: 'off' },
        { at: 3, mode: 'contributing', target: FULL },
      ],
      idlePolicy(),
    );
  });
});

describe('combined conditions (AND)', () => {
  const all = policy({
    idle: { enabled: true, minutes: 10 },
    schedule: { enabled: true, hours: defaultWeeklyHours() },
    battery: { pauseOnBattery: true, minPercent: 30 },
    graceMinutes: 3,
  });

  test('every condition must hold; each one alone blocks', () => {
    const clear = { weekday: 1, hour: 20, idleSeconds: 900, onBattery: false, batteryPercent: 80 };
    run(
      [
        {
          at: 0,
          signals: clear,
          mode: 'contributing',
          sentence: 'Contributing: idle for 15 min, inside the schedule until Tue 08:00',
        },
      ],
      all,
    );
    const blockers: Array<[Partial<PolicySignals>, PolicyReason]> = [
      [{ idleSeconds: 30 }, 'in-use'],
      [{ hour: 9 }, 'outside-schedule'],
      [{ onBattery: true }, 'on-battery'],
      [{ batteryPercent: 20 }, 'low-battery'],
    ];
    for (const [change, reason] of blockers) {
      run(
        [
          { at: 0, signals: clear, mode: 'contributing' },
          { at: 1, signals: { ...clear, ...change }, mode: 'stepping-aside', reason, target: throttled(0.1) },
        ],
        all,
      );
    }
  });

  test('several blockers: named together; resuming needs them all clear; the grace clock survives a change of reason', () => {
    const decisions = run(
      [
        { at: 0, signals: { hour: 20, idleSeconds: 900 }, mode: 'contributing' },
        { at: 1, signals: { hour: 20, idleSeconds: 1 }, mode: 'stepping-aside', reason: 'in-use' },
        {
          at: 2,
          signals: { hour: 20, idleSeconds: 1, onBattery: true },
          mode: 'stepping-aside',
          reason: 'on-battery',
          sentence:
            'Stepping aside: on battery and you are using the computer; draining in 2 min unless it is on AC power again and it is idle again',
        },
        {
          at: 3,
          signals: { hour: 20, idleSeconds: 900, onBattery: true },
          mode: 'stepping-aside',
          reason: 'on-battery',
        },
        {
          at: 4,
          signals: { weekday: 2, hour: 9, idleSeconds: 2, onBattery: true },
          mode: 'paused',
          sentence:
            'Paused: on battery, outside the schedule and you are using the computer; will resume on AC power, from Tue 18:00 and once it has been idle for 10 min',
        },
        { at: 600, signals: { weekday: 2, hour: 19, idleSeconds: 900, onBattery: true }, mode: 'paused' },
        { at: 601, signals: { weekday: 2, hour: 19, idleSeconds: 900, onBattery: false }, mode: 'contributing' },
      ],
      all,
    );
    expect(decisions[2]?.state.steppedAsideAtMs).toBe(T0 + MIN);
  });

  test('since moves only when mode or reason changes', () => {
    const decisions = run(
      [
        { at: 0, signals: { hour: 20, idleSeconds: 900 }, mode: 'contributing' },
        { at: 1, signals: { hour: 20, idleSeconds: 960 }, mode: 'contributing' },
        { at: 2, signals: { hour: 20, idleSeconds: 1 }, mode: 'stepping-aside' },
        { at: 2.5, signals: { hour: 20, idleSeconds: 2 }, mode: 'stepping-aside' },
      ],
      all,
    );
    expect(decisions.map((decision) => decision.view.since)).toEqual([
      new Date(T0).toISOString(),
      new Date(T0).toISOString(),
      new Date(T0 + 2 * MIN).toISOString(),
      new Date(T0 + 2 * MIN).toISOString(),
    ]);
  });
});
