import si from 'systeminformation';
import { describe, expect, test } from 'vitest';
import { batterySignals, headlessSignals, localTime } from '../../src/policy/machine-signals.js';

const reading = (overrides: Partial<Parameters<typeof batterySignals>[0]>) => ({
  hasBattery: true,
  isCharging: false,
  acConnected: false,
  percent: 64,
  ...overrides,
});

describe('batterySignals', () => {
  test.each([
    [
      'no battery: on mains, level unknown',
      { hasBattery: false, percent: 0 },
      { onBattery: false, batteryPercent: null },
    ],
    ['on battery', {}, { onBattery: true, batteryPercent: 64 }],
    ['AC connected', { acConnected: true }, { onBattery: false, batteryPercent: 64 }],
    ['charging', { isCharging: true, percent: 12.5 }, { onBattery: false, batteryPercent: 12.5 }],
    ['a level that is no number is unknown', { percent: Number.NaN }, { onBattery: true, batteryPercent: null }],
    ['a level above 100 is capped', { percent: 104 }, { onBattery: true, batteryPercent: 100 }],
  ])('%s', (_name, overrides, expected) => {
    expect(batterySignals(reading(overrides))).toEqual(expected);
  });
});

describe('localTime', () => {
  test('the weekday and hour of the instant in this machine’s zone', () => {
    const instant = new Date(2026, 0, 10, 23, 30).getTime(); // Saturday 23:30 local
    expect(localTime(instant)).toEqual({ weekday: 6, hour: 23 });
    expect(localTime(instant + 60 * 60_000)).toEqual({ weekday: 0, hour: 0 });
  });
});

describe('headlessSignals', () => {
  test('over the real systeminformation on this machine (no battery here): a whole, valid signal set', async () => {
    const real = await si.battery();
    const signals = await headlessSignals()();
    expect(signals).toEqual({
      nowMs: expect.any(Number),
      weekday: expect.any(Number),
      hour: expect.any(Number),
      idleSeconds: null,
      onBattery: batterySignals(real).onBattery,
      batteryPercent: batterySignals(real).batteryPercent,
      goingAway: null,
    });
    expect(Math.abs(signals.nowMs - Date.now())).toBeLessThan(60_000);
    expect(localTime(signals.nowMs)).toEqual({ weekday: signals.weekday, hour: signals.hour });
    if (!real.hasBattery) expect(signals).toMatchObject({ onBattery: false, batteryPercent: null });
  });

  test('a clock and a battery given as inputs; a battery read that fails means "cannot tell"', async () => {
    const now = () => new Date(2026, 0, 5, 9, 15).getTime(); // Monday 09:15 local
    const onBattery = await headlessSignals({ now, battery: async () => reading({ percent: 40 }) })();
    expect(onBattery).toEqual({
      nowMs: now(),
      weekday: 1,
      hour: 9,
      idleSeconds: null,
      onBattery: true,
      batteryPercent: 40,
      goingAway: null,
    });
    const broken = await headlessSignals({ now, battery: () => Promise.reject(new Error('no /sys')) })();
    expect(broken).toMatchObject({ onBattery: null, batteryPercent: null });
  });
});
