import {
  type ContributionPolicy,
  POLICY_LIMITS,
  type PolicyMode,
  type PolicyReason,
  type PolicySignals,
  type PolicyView,
  type StopMode,
} from '@ray-agent/protocol';
import { type Blocker, policySentence } from './policy-sentence.js';
import type { PolicyTarget } from './policy-target.js';

/**
 * The contribution policy as a pure function: the settings, the person's switch and the machine's signals (clock
 * included) go in, the target for the agent and the one-sentence view come out. No I/O and no clock reads, so every
 * transition is a unit test.
 *
 * Modes and targets:
 * - off: contributing is switched off (the person's stop mode picks drain or stop now). It wins over everything.
 * - draining: the machine is going away (sleep, shutdown, log-out): stopped at once with the going-away deadline.
 * - contributing: every condition holds: full limits.
 * - stepping-aside: a condition blocks while contributing: CPU throttled, tasks run on, the grace period runs.
 * - paused: the grace period ran out (or is 0), or a condition blocks while the node is not running: stopped with
 *   Ray's drain and the container's drain deadline. The engine cannot see when that drain ends (the actuator's stop
 *   returns then), so it does not keep a separate "draining" mode for it: "paused" starts when the grace expires.
 *   A paused node whose conditions still block stays paused: it is never started only to be throttled.
 */

export interface PolicyInput {
  policy: ContributionPolicy;
  /** The person's switch. */
  contribute: boolean;
  /** How the person stopped; only read while `contribute` is false. null: switched off without a stop choice. */
  stopMode: StopMode | null;
  signals: PolicySignals;
}

export interface PolicyState {
  mode: PolicyMode;
  reason: PolicyReason | null;
  /** When mode or reason last changed: the view's `since`. */
  sinceMs: number;
  /** When the current stepping aside began (the grace clock); null unless stepping aside. */
  steppedAsideAtMs: number | null;
  /**
   * The battery went below the floor and has not yet climbed back to floor + hysteresis: stays true in between, so
   * a battery hovering at the line does not start and stop the node over and over.
   */
  batteryLow: boolean;
}

export interface PolicyDecision {
  state: PolicyState;
  target: PolicyTarget;
  view: PolicyView;
}

/**
 * The state before the first decision. It counts as "paused" with no reason: a controller that (re)starts while a
 * condition blocks does not start a node only to throttle it; one that restarts mid-throttle drains instead of
 * throttling (no work is lost, the tasks finish). With every condition clear the first decision is "contributing".
 */
export function initialPolicyState(nowMs: number): PolicyState {
  return { mode: 'paused', reason: null, sinceMs: nowMs, steppedAsideAtMs: null, batteryLow: false };
}

const FULL: PolicyTarget = { kind: 'full' };

export function decide(input: PolicyInput, previous: PolicyState): PolicyDecision {
  const { policy, signals } = input;
  const now = signals.nowMs;
  const batteryLow = nextBatteryLatch(policy, signals.batteryPercent, previous.batteryLow);

  if (!input.contribute) {
    const target: PolicyTarget =
      input.stopMode === 'now'
        ? { kind: 'stopped', stop: { how: 'now' } }
        : { kind: 'stopped', stop: { how: 'drain', deadlineSeconds: null, reason: 'pause' } };
    return finish(input, previous, { mode: 'off', reason: input.stopMode === null ? 'off' : 'paused' }, target, {
      batteryLow,
      steppedAsideAtMs: null,
      blockers: [],
    });
  }

  if (signals.goingAway !== null) {
    const target: PolicyTarget = {
      kind: 'stopped',
      stop: { how: 'drain', deadlineSeconds: policy.goingAwayDrainSeconds, reason: signals.goingAway },
    };
    return finish(input, previous, { mode: 'draining', reason: signals.goingAway }, target, {
      batteryLow,
      steppedAsideAtMs: null,
      blockers: [],
    });
  }

  const blockers = blockingConditions(input, batteryLow);
  const first = blockers[0];
  if (first === undefined) {
    return finish(input, previous, { mode: 'contributing', reason: null }, FULL, {
      batteryLow,
      steppedAsideAtMs: null,
      blockers,
    });
  }

  const reason = first.reason;
  const running = previous.mode === 'contributing' || previous.mode === 'stepping-aside';
  if (running) {
    const began =
      previous.mode === 'stepping-aside' && previous.steppedAsideAtMs !== null ? previous.steppedAsideAtMs : now;
    // A clock that moved backwards counts as no time passed; one that jumped (the machine slept) expires the grace.
    if (Math.max(0, now - began) < policy.graceMinutes * 60_000) {
      const target: PolicyTarget = { kind: 'throttled', cpuFraction: policy.throttlePercent / 100 };
      return finish(input, previous, { mode: 'stepping-aside', reason }, target, {
        batteryLow,
        steppedAsideAtMs: began,
        blockers,
      });
    }
  }
  const target: PolicyTarget = { kind: 'stopped', stop: { how: 'drain', deadlineSeconds: null, reason: 'policy' } };
  return finish(input, previous, { mode: 'paused', reason }, target, { batteryLow, steppedAsideAtMs: null, blockers });
}

/** The floor with hysteresis: below it latches, at floor + hysteresis releases; unknown level or floor 0: no rule. */
export function nextBatteryLatch(policy: ContributionPolicy, percent: number | null, wasLow: boolean): boolean {
  const floor = policy.battery.minPercent;
  if (percent === null || floor <= 0) return false;
  if (percent < floor) return true;
  if (percent >= floor + POLICY_LIMITS.batteryHysteresisPercent) return false;
  return wasLow;
}

/** What blocks contributing now, most lasting first (the first one is the view's reason). */
function blockingConditions(input: PolicyInput, batteryLow: boolean): Blocker[] {
  const { policy, signals } = input;
  const blockers: Blocker[] = [];
  if (policy.battery.pauseOnBattery && signals.onBattery === true) blockers.push({ reason: 'on-battery' });
  // The floor holds on AC power too: the person asked never to go below it, and charging lifts it past the line soon.
  if (batteryLow && signals.batteryPercent !== null) {
    blockers.push({
      reason: 'low-battery',
      percent: signals.batteryPercent,
      resumePercent: policy.battery.minPercent + POLICY_LIMITS.batteryHysteresisPercent,
    });
  }
  if (policy.schedule.enabled && policy.schedule.hours[signals.weekday]?.[signals.hour] !== true) {
    blockers.push({ reason: 'outside-schedule' });
  }
  if (policy.idle.enabled && signals.idleSeconds !== null && signals.idleSeconds < policy.idle.minutes * 60) {
    blockers.push({ reason: 'in-use' });
  }
  return blockers;
}

function finish(
  input: PolicyInput,
  previous: PolicyState,
  next: { mode: PolicyMode; reason: PolicyReason | null },
  target: PolicyTarget,
  extra: { batteryLow: boolean; steppedAsideAtMs: number | null; blockers: Blocker[] },
): PolicyDecision {
  const now = input.signals.nowMs;
  const same = previous.mode === next.mode && previous.reason === next.reason;
  const state: PolicyState = {
    mode: next.mode,
    reason: next.reason,
    sinceMs: same ? previous.sinceMs : now,
    steppedAsideAtMs: extra.steppedAsideAtMs,
    batteryLow: extra.batteryLow,
  };
  const sentence = policySentence({
    mode: next.mode,
    reason: next.reason,
    policy: input.policy,
    signals: input.signals,
    stopMode: input.stopMode,
    blockers: extra.blockers,
    graceLeftMs:
      extra.steppedAsideAtMs === null
        ? null
        : input.policy.graceMinutes * 60_000 - Math.max(0, now - extra.steppedAsideAtMs),
  });
  return {
    state,
    target,
    view: { mode: next.mode, reason: next.reason, sentence, since: new Date(state.sinceMs).toISOString() },
  };
}
