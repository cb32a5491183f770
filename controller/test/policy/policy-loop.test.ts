import { type ContributionPolicy, DEFAULT_POLICY, type PolicySignals, type PolicyView } from '@ray-agent/protocol';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { PolicyLoop } from '../../src/policy/policy-loop.js';
import type { PolicyActuator, PolicyTarget } from '../../src/policy/policy-target.js';

/**
 * The loop's own logic over a recording actuator (the real container actuator is tested against Docker elsewhere)
 * and scripted signals, on fake timers so ticks are exact.
 */

const T0 = Date.parse('2026-01-05T12:00:00Z');
const FULL: PolicyTarget = { kind: 'full' };
const THROTTLED: PolicyTarget = { kind: 'throttled', cpuFraction: 0.1 };
const POLICY_STOP: PolicyTarget = { kind: 'stopped', stop: { how: 'drain', deadlineSeconds: null, reason: 'policy' } };

/** Records every apply; `hold()` makes the next applies wait until released; `failNext` makes them reject. */
class RecordingActuator implements PolicyActuator {
  readonly applied: PolicyTarget[] = [];
  inFlight = 0;
  maxInFlight = 0;
  failNext = 0;
  private gate: { promise: Promise<void>; release: () => void } | null = null;

  hold(): void {
    let release = () => {};
    const promise = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.gate = { promise, release };
  }

  release(): void {
    const gate = this.gate;
    this.gate = null;
    gate?.release();
  }

  async apply(target: PolicyTarget): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.gate) await this.gate.promise;
      if (this.failNext > 0) {
        this.failNext--;
        throw new Error('docker update failed: engine not answering');
      }
      this.applied.push(structuredClone(target));
    } finally {
      this.inFlight--;
    }
  }
}

let idleSeconds = 3600;
let contribute = true;
const policy: ContributionPolicy = { ...DEFAULT_POLICY, idle: { enabled: true, minutes: 5 }, graceMinutes: 1 };

function readSignals(): Promise<PolicySignals> {
  return Promise.resolve({
    nowMs: Date.now(),
    weekday: 1,
    hour: 12,
    idleSeconds,
    onBattery: false,
    batteryPercent: null,
    goingAway: null,
  });
}

function makeLoop(actuator: PolicyActuator, extra: Partial<ConstructorParameters<typeof PolicyLoop>[0]> = {}) {
  const views: PolicyView[] = [];
  const errors: Error[] = [];
  const loop = new PolicyLoop({
    actuator,
    readSignals,
    readInput: () => ({ policy, contribute, stopMode: null }),
    intervalMs: 2000,
    onView: (view) => views.push(view),
    onError: (error) => errors.push(error),
    ...extra,
  });
  return { loop, views, errors };
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  idleSeconds = 3600;
  contribute = true;
});

afterEach(() => {
  vi.useRealTimers();
});

describe('PolicyLoop', () => {
  test('applies the first target at once, then only when the target changes', async () => {
    const actuator = new RecordingActuator();
    const { loop, views } = makeLoop(actuator);
    expect(loop.view.mode).toBe('paused');
    loop.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(actuator.applied).toEqual([FULL]);
    expect(loop.view.mode).toBe('contributing');

    await vi.advanceTimersByTimeAsync(10_000);
    expect(actuator.applied).toEqual([FULL]);

    idleSeconds = 2;
    await vi.advanceTimersByTimeAsync(2000);
    expect(actuator.applied).toEqual([FULL, THROTTLED]);
    expect(loop.view.mode).toBe('stepping-aside');

    // Still in use past the one-minute grace: drained and stopped, once.
    await vi.advanceTimersByTimeAsync(62_000);
    expect(actuator.applied).toEqual([FULL, THROTTLED, POLICY_STOP]);

    idleSeconds = 600;
    await vi.advanceTimersByTimeAsync(2000);
    expect(actuator.applied).toEqual([FULL, THROTTLED, POLICY_STOP, FULL]);
    expect(views.map((view) => view.mode)).toEqual(['contributing', 'stepping-aside', 'paused', 'contributing']);
    await loop.stop();
  });

  test('reapply applies the current target again, though it was applied already (new limits behind it)', async () => {
    const actuator = new RecordingActuator();
    const { loop } = makeLoop(actuator);
    loop.start();
    await vi.advanceTimersByTimeAsync(0);
    idleSeconds = 2;
    await loop.poke();
    expect(actuator.applied).toEqual([FULL, THROTTLED]);
    await loop.poke();
    expect(actuator.applied).toEqual([FULL, THROTTLED]);
    await loop.reapply();
    expect(actuator.applied).toEqual([FULL, THROTTLED, THROTTLED]);
    await loop.stop();
  });

  test('onView fires when the view changes, not on every tick', async () => {
    const actuator = new RecordingActuator();
    const { loop, views } = makeLoop(actuator);
    loop.start();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(views).toHaveLength(1);
    idleSeconds += 60; // "idle for 61 min": the sentence changes, the target does not
    await vi.advanceTimersByTimeAsync(2000);
    expect(views.map((view) => view.sentence)).toEqual([
      'Contributing: idle for 60 min',
      'Contributing: idle for 61 min',
    ]);
    expect(actuator.applied).toEqual([FULL]);
    await loop.stop();
  });

  test('poke evaluates now and resolves only after the resulting apply finished', async () => {
    const actuator = new RecordingActuator();
    const { loop } = makeLoop(actuator);
    await loop.poke();
    expect(actuator.applied).toEqual([FULL]);

    actuator.hold();
    idleSeconds = 1;
    let settled = false;
    const poked = loop.poke().then(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBe(false);
    expect(loop.view.mode).toBe('stepping-aside');
    actuator.release();
    await poked;
    expect(actuator.applied).toEqual([FULL, THROTTLED]);
  });

  test('never two applies at once: a newer target waits, an intermediate one is skipped', async () => {
    const actuator = new RecordingActuator();
    const { loop } = makeLoop(actuator);
    await loop.poke();

    actuator.hold(); // the throttle hangs, like a slow engine
    idleSeconds = 1;
    const first = loop.poke();
    await vi.advanceTimersByTimeAsync(0);
    expect(actuator.inFlight).toBe(1);

    contribute = false; // off: a stop (skipped: superseded before it could start)
    const second = loop.poke();
    await vi.advanceTimersByTimeAsync(0);
    contribute = true;
    idleSeconds = 600; // full again
    const third = loop.poke();
    await vi.advanceTimersByTimeAsync(0);
    expect(actuator.inFlight).toBe(1);

    actuator.release();
    await Promise.all([first, second, third]);
    expect(actuator.maxInFlight).toBe(1);
    expect(actuator.applied).toEqual([FULL, THROTTLED, FULL]);
  });

  test('a failed apply is retried on the next tick, reported once while it keeps failing', async () => {
    const actuator = new RecordingActuator();
    const { loop, errors } = makeLoop(actuator);
    actuator.failNext = 3;
    loop.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(actuator.applied).toEqual([]);
    await vi.advanceTimersByTimeAsync(2000);
    await vi.advanceTimersByTimeAsync(2000);
    expect(actuator.applied).toEqual([]);
    expect(errors.map((error) => error.message)).toEqual(['docker update failed: engine not answering']);
    await vi.advanceTimersByTimeAsync(2000);
    expect(actuator.applied).toEqual([FULL]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(actuator.applied).toEqual([FULL]);
    await loop.stop();
  });

  test('after a failure the same target is applied again (the container may be half-way)', async () => {
    const actuator = new RecordingActuator();
    const { loop } = makeLoop(actuator);
    await loop.poke();
    idleSeconds = 1;
    actuator.failNext = 1;
    await loop.poke(); // throttle fails
    idleSeconds = 600;
    await loop.poke(); // back to full: applied again although full was applied before the failure
    expect(actuator.applied).toEqual([FULL, FULL]);
  });

  test('a signal read that fails skips the tick and is reported; the loop goes on', async () => {
    const actuator = new RecordingActuator();
    let fail = true;
    const { loop, errors } = makeLoop(actuator, {
      readSignals: () => (fail ? Promise.reject(new Error('battery read failed')) : readSignals()),
    });
    loop.start();
    await vi.advanceTimersByTimeAsync(4000);
    expect(actuator.applied).toEqual([]);
    expect(errors.map((error) => error.message)).toEqual(['battery read failed']);
    fail = false;
    await vi.advanceTimersByTimeAsync(2000);
    expect(actuator.applied).toEqual([FULL]);
    await loop.stop();
  });

  test('stop waits for the apply in flight, and nothing is applied afterwards', async () => {
    const actuator = new RecordingActuator();
    const { loop } = makeLoop(actuator);
    actuator.hold();
    loop.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(actuator.inFlight).toBe(1);
    let stopped = false;
    const stopping = loop.stop().then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(5000);
    expect(stopped).toBe(false);
    actuator.release();
    await stopping;
    expect(actuator.applied).toEqual([FULL]);
    idleSeconds = 1;
    await loop.poke();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(actuator.applied).toEqual([FULL]);
  });

  test('a restarted controller applies the current target again (crash-only)', async () => {
    const actuator = new RecordingActuator();
    const first = makeLoop(actuator).loop;
    await first.poke();
    await first.stop();
    const second = makeLoop(actuator).loop;
    await second.poke();
    expect(actuator.applied).toEqual([FULL, FULL]);
  });
});
