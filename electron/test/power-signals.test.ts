import { EventEmitter } from 'node:events';
import type { PolicySignals } from '@ray-agent/protocol';
import { describe, expect, it } from 'vitest';
import {
  BATTERY_REFRESH_MS,
  isWaylandSession,
  PowerSignals,
  type PowerSignalsOptions,
  SAMPLE_MS,
  SHUTDOWN_MARGIN_MS,
  WAYLAND_STUCK_MS,
} from '../src/power-signals.js';

/**
 * PowerSignals over a stand-in powerMonitor (Electron cannot run here) and a stand-in service; the clock and the
 * timers are the test's, so holds and samples are checked without waiting.
 */
class Monitor extends EventEmitter {
  idle = 0;
  battery = false;
  getSystemIdleTime() {
    return this.idle;
  }
  isOnBatteryPower() {
    return this.battery;
  }
}

interface Timer {
  fn: () => void;
  ms: number;
  cancelled: boolean;
}

function setup(overrides: Partial<PowerSignalsOptions> = {}) {
  const monitor = new Monitor();
  const pushed: PolicySignals[] = [];
  const calls: string[] = [];
  let drained: () => void = () => {};
  let now = Date.parse('2026-12-07T09:30:00');
  const timers: Timer[] = [];
  const repeats: Timer[] = [];
  let quits = 0;
  let batteryReads = 0;
  let batteryPercent: number | null = 64;
  const signals = new PowerSignals({
    monitor,
    service: {
      machineSignals: (s) => pushed.push(s),
      goingAway: (kind) => {
        calls.push(`goingAway:${kind}`);
        return new Promise<void>((resolve) => {
          drained = resolve;
        });
      },
      resumed: () => calls.push('resumed'),
    },
    platform: 'linux',
    env: { XDG_SESSION_TYPE: 'x11' },
    readBattery: async () => {
      batteryReads++;
      return { hasBattery: batteryPercent !== null, percent: batteryPercent };
    },
    drainSeconds: () => 20,
    quit: () => {
      quits++;
    },
    now: () => now,
    setTimer: (fn, ms) => {
      const timer = { fn, ms, cancelled: false };
      timers.push(timer);
      return { cancel: () => (timer.cancelled = true) };
    },
    setRepeat: (fn, ms) => {
      const timer = { fn, ms, cancelled: false };
      repeats.push(timer);
      return { cancel: () => (timer.cancelled = true) };
    },
    log: () => {},
    ...overrides,
  });
  return {
    monitor,
    signals,
    pushed,
    calls,
    timers,
    repeats,
    last: () => pushed.at(-1),
    drain: () => drained(),
    quits: () => quits,
    batteryReads: () => batteryReads,
    setBattery: (value: number | null) => {
      batteryPercent = value;
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const shutdownEvent = () => {
  const event = { prevented: 0, preventDefault: () => event.prevented++ };
  return event;
};

describe('PowerSignals: powerMonitor in, PolicySignals out', () => {
  it('pushes the signals at start, after the first battery read, and every SAMPLE_MS', async () => {
    const t = setup();
    t.monitor.idle = 42;
    t.signals.start();
    expect(t.pushed).toHaveLength(1);
    await tick();
    expect(t.last()).toEqual({
      nowMs: Date.parse('2026-12-07T09:30:00'),
      weekday: 1,
      hour: 9,
      idleSeconds: 42,
      onBattery: false,
      batteryPercent: 64,
      goingAway: null,
    });
    expect(t.repeats).toHaveLength(1);
    expect(t.repeats[0]?.ms).toBe(SAMPLE_MS);
    t.monitor.idle = 0;
    t.repeats[0]?.fn();
    expect(t.last()?.idleSeconds).toBe(0);
    t.signals.stop();
    expect(t.repeats[0]?.cancelled).toBe(true);
  });

  it('a power source change is pushed at once, with a fresh battery level', async () => {
    const t = setup();
    t.signals.start();
    await tick();
    const seen: string[] = [];
    t.signals.onEvent((event) => seen.push(event));
    t.monitor.battery = true;
    t.setBattery(31);
    const before = t.pushed.length;
    t.monitor.emit('on-battery');
    expect(t.pushed.length).toBe(before + 1);
    expect(t.last()?.onBattery).toBe(true);
    await tick();
    expect(t.last()?.batteryPercent).toBe(31);
    expect(seen).toEqual(['on-battery']);
  });

  it('the battery level is re-read every BATTERY_REFRESH_MS, not on every sample; no battery reads as null', async () => {
    const t = setup();
    t.signals.start();
    await tick();
    const reads = t.batteryReads();
    t.advance(SAMPLE_MS);
    t.signals.push();
    expect(t.batteryReads()).toBe(reads);
    t.setBattery(null);
    t.advance(BATTERY_REFRESH_MS);
    t.signals.push();
    await tick();
    expect(t.batteryReads()).toBe(reads + 1);
    t.signals.push();
    expect(t.last()?.batteryPercent).toBeNull();
  });

  it('suspend: goingAway is pushed and the service drains; resume clears it and tells the service', async () => {
    const t = setup();
    t.signals.start();
    t.monitor.emit('suspend');
    expect(t.last()?.goingAway).toBe('suspend');
    expect(t.calls).toEqual(['goingAway:suspend']);
    t.monitor.emit('resume');
    expect(t.calls).toEqual(['goingAway:suspend', 'resumed']);
    expect(t.last()?.goingAway).toBeNull();
    expect(t.quits()).toBe(0);
  });

  it('shutdown (Linux, macOS): prevented, held until the drain finishes, then the app quits', async () => {
    const t = setup();
    t.signals.start();
    const event = shutdownEvent();
    t.monitor.emit('shutdown', event);
    expect(event.prevented).toBe(1);
    expect(t.signals.holdingShutdown).toBe(true);
    expect(t.last()?.goingAway).toBe('shutdown');
    expect(t.calls).toEqual(['goingAway:shutdown']);
    expect(t.timers[0]?.ms).toBe(20_000 + SHUTDOWN_MARGIN_MS);
    await tick();
    expect(t.quits()).toBe(0);
    t.drain();
    await tick();
    expect(t.quits()).toBe(1);
    expect(t.timers[0]?.cancelled).toBe(true);
    // A late timer does nothing more.
    t.timers[0]?.fn();
    expect(t.quits()).toBe(1);
  });

  it('a drain that never finishes: the hold ends at the deadline + margin and the app quits anyway', async () => {
    const t = setup();
    t.signals.start();
    t.monitor.emit('shutdown', shutdownEvent());
    t.timers[0]?.fn();
    expect(t.quits()).toBe(1);
    t.drain();
    await tick();
    expect(t.quits()).toBe(1);
  });

  it('a service that throws on goingAway does not leave the shutdown held', async () => {
    const t = setup({
      service: {
        machineSignals: () => {},
        goingAway: () => {
          throw new Error('no service');
        },
        resumed: () => {},
      },
    });
    t.signals.start();
    t.monitor.emit('shutdown', shutdownEvent());
    await tick();
    expect(t.quits()).toBe(1);
  });

  it('Windows: query-session-end is prevented and held; asked again, it is prevented again; one drain only', async () => {
    const t = setup({ platform: 'win32' });
    const window = new EventEmitter();
    t.signals.start();
    t.signals.watchWindow(window as never);
    const first = shutdownEvent();
    window.emit('query-session-end', { ...first, reasons: ['shutdown'] });
    expect(first.prevented).toBe(1);
    const again = shutdownEvent();
    window.emit('query-session-end', { ...again, reasons: ['shutdown'] });
    expect(again.prevented).toBe(1);
    window.emit('session-end', { ...shutdownEvent(), reasons: ['shutdown'] });
    expect(t.calls).toEqual(['goingAway:shutdown']);
    t.drain();
    await tick();
    expect(t.quits()).toBe(1);
  });

  it('Windows: a session-end without a query first still drains and quits', async () => {
    const t = setup({ platform: 'win32' });
    const window = new EventEmitter();
    t.signals.watchWindow(window as never);
    window.emit('session-end', { ...shutdownEvent(), reasons: ['logoff'] });
    expect(t.calls).toEqual(['goingAway:shutdown']);
    t.drain();
    await tick();
    expect(t.quits()).toBe(1);
  });

  it('other platforms ignore window session events (powerMonitor has shutdown there)', () => {
    const t = setup({ platform: 'linux' });
    const window = new EventEmitter();
    t.signals.watchWindow(window as never);
    expect(window.listenerCount('query-session-end')).toBe(0);
  });

  it('Wayland: idle stuck at 0 counts as in use for WAYLAND_STUCK_MS, then as unknown (null)', () => {
    const t = setup({ env: { XDG_SESSION_TYPE: 'wayland' } });
    t.monitor.idle = 0;
    expect(t.signals.current().idleSeconds).toBe(0);
    t.advance(WAYLAND_STUCK_MS);
    expect(t.signals.current().idleSeconds).toBeNull();
  });

  it('Wayland where idle time works: once a reading above 0 is seen, it is trusted, zeros included', () => {
    const t = setup({ env: { WAYLAND_DISPLAY: 'wayland-0' } });
    t.monitor.idle = 3;
    expect(t.signals.current().idleSeconds).toBe(3);
    t.monitor.idle = 0;
    t.advance(WAYLAND_STUCK_MS * 2);
    expect(t.signals.current().idleSeconds).toBe(0);
  });

  it('X11 and other platforms: 0 is 0, however long', () => {
    const t = setup();
    t.advance(WAYLAND_STUCK_MS * 2);
    expect(t.signals.current().idleSeconds).toBe(0);
    expect(isWaylandSession({ XDG_SESSION_TYPE: 'x11' })).toBe(false);
    expect(isWaylandSession({ XDG_SESSION_TYPE: 'Wayland' })).toBe(true);
  });

  it('a powerMonitor that throws reads as "cannot tell" (null), not as a crash', () => {
    const t = setup();
    t.monitor.getSystemIdleTime = () => {
      throw new Error('unsupported');
    };
    t.monitor.isOnBatteryPower = () => {
      throw new Error('unsupported');
    };
    expect(t.signals.current()).toMatchObject({ idleSeconds: null, onBattery: null });
  });
});
