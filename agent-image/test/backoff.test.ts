import { describe, expect, it } from 'vitest';
import { Backoff, sleep } from '../src/supervisor/backoff.js';

describe('Backoff', () => {
  it('grows exponentially up to the cap (random at its top)', () => {
    const backoff = new Backoff(100, 1_000, () => 1);
    const waits = Array.from({ length: 7 }, () => backoff.next());
    expect(waits).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
    expect(backoff.attempts).toBe(7);
  });

  it('draws each wait from [0, ceiling] with a floor of half the base', () => {
    const backoff = new Backoff(100, 10_000, () => 0.5);
    expect(Array.from({ length: 5 }, () => backoff.next())).toEqual([50, 100, 200, 400, 800]);
    const floor = new Backoff(100, 10_000, () => 0);
    expect(Array.from({ length: 4 }, () => floor.next())).toEqual([50, 50, 50, 50]);
  });

  it('starts over after reset', () => {
    const backoff = new Backoff(100, 1_000, () => 1);
    backoff.next();
    backoff.next();
    backoff.next();
    expect(backoff.attempts).toBe(3);
    backoff.reset();
    expect(backoff.attempts).toBe(0);
    expect(backoff.next()).toBe(100);
    expect(backoff.next()).toBe(200);
  });

  it('stays finite and capped after very many attempts', () => {
    const backoff = new Backoff(1_000, 60_000, () => 1);
    let last = 0;
    for (let i = 0; i < 100; i += 1) last = backoff.next();
    expect(last).toBe(60_000);
  });

  it('stays within [base/2, cap] with the real random source', () => {
    const backoff = new Backoff(10, 500);
    for (let i = 0; i < 200; i += 1) {
      const wait = backoff.next();
      expect(wait).toBeGreaterThanOrEqual(5);
      expect(wait).toBeLessThanOrEqual(500);
    }
  });
});

describe('sleep', () => {
  it('resolves when its time is up', async () => {
    const controller = new AbortController();
    await expect(sleep(5, controller.signal)).resolves.toBeUndefined();
  });

  it('resolves at once when the signal aborts mid-sleep', { timeout: 10_000 }, async () => {
    const controller = new AbortController();
    let settled = false;
    const sleeping = sleep(600_000, controller.signal).then(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(settled).toBe(false);
    controller.abort();
    await sleeping; // a ten-minute sleep that ignored the abort would fail this test on its timeout
    expect(settled).toBe(true);
  });

  it('resolves at once when the signal is already aborted', { timeout: 10_000 }, async () => {
    await expect(sleep(600_000, AbortSignal.abort())).resolves.toBeUndefined();
  });
});
