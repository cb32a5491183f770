import { describe, expect, test } from 'vitest';
import {
  limitsHold,
  limitsToReconcile,
  nanoCpusFor,
  throttleCpusFor,
  validateLiveLimits,
} from '../src/container/live-limits.js';

/** The pure decisions of live limits; applying them against the real engine is in live-limits.engine.test.ts. */
const MiB = 1024 ** 2;
const GiB = 1024 * MiB;
const host = (cpus: number, memoryBytes: number) => ({
  NanoCpus: nanoCpusFor(cpus),
  Memory: memoryBytes,
  MemorySwap: memoryBytes,
});
const offer = { cpus: 2, memoryBytes: 4 * GiB };

describe('limitsToReconcile: what up() changes in place on an adopted container', () => {
  test('nothing when the kernel holds the offer (with or without the agent record)', () => {
    expect(limitsToReconcile(host(2, 4 * GiB), offer, null)).toBeNull();
    expect(limitsToReconcile(host(2, 4 * GiB), offer, { ...offer, throttleCpus: null })).toBeNull();
  });

  test('new CPU or memory figures: the offer, at full power', () => {
    expect(limitsToReconcile(host(1, 4 * GiB), offer, null)).toEqual({ ...offer, throttleCpus: null });
    expect(limitsToReconcile(host(2, 2 * GiB), offer, null)).toEqual({ ...offer, throttleCpus: null });
    // Swap set apart from memory by hand: no swap on top of the limit.
    expect(limitsToReconcile({ ...host(2, 4 * GiB), MemorySwap: -1 }, offer, null)).toEqual({
      ...offer,
      throttleCpus: null,
    });
  });

  test('a throttle the agent recorded and the kernel enforces stays (a restarted controller adopting a container that stepped aside)', () => {
    const recorded = { ...offer, throttleCpus: 0.2 };
    expect(limitsToReconcile(host(0.2, 4 * GiB), offer, recorded)).toBeNull();
    // The offer changed meanwhile: the new offer, still throttled.
    expect(limitsToReconcile(host(0.2, 4 * GiB), { cpus: 4, memoryBytes: 4 * GiB }, recorded)).toEqual({
      cpus: 4,
      memoryBytes: 4 * GiB,
      throttleCpus: 0.2,
    });
  });

  test('a lower CPU limit without a record is an old offer: brought to the new one', () => {
    expect(limitsToReconcile(host(0.2, 4 * GiB), offer, null)).toEqual({ ...offer, throttleCpus: null });
  });

  test('a record whose throttle the kernel does not enforce (a kill between update and telling) is corrected', () => {
    expect(limitsToReconcile(host(2, 4 * GiB), offer, { ...offer, throttleCpus: 0.2 })).toEqual({
      ...offer,
      throttleCpus: null,
    });
  });

  test('a record of another offer: the agent is told again though the kernel holds', () => {
    expect(limitsToReconcile(host(2, 4 * GiB), offer, { cpus: 1, memoryBytes: 4 * GiB, throttleCpus: null })).toEqual({
      ...offer,
      throttleCpus: null,
    });
  });
});

describe('limitsHold', () => {
  test('the kernel enforces the throttle when given, else the offer', () => {
    expect(limitsHold(host(0.2, 4 * GiB), { ...offer, throttleCpus: 0.2 }, null)).toBe(true);
    expect(limitsHold(host(2, 4 * GiB), { ...offer, throttleCpus: 0.2 }, null)).toBe(false);
    expect(limitsHold(host(0.2, 4 * GiB), { ...offer, throttleCpus: null }, null)).toBe(false);
  });
});

describe('throttleCpusFor and validation', () => {
  test("the fraction of the offer, never below Docker's 0.01", () => {
    expect(throttleCpusFor(2, 0.1)).toBeCloseTo(0.2);
    expect(throttleCpusFor(0.05, 0.1)).toBe(0.01);
    expect(nanoCpusFor(0.2)).toBe(200_000_000);
  });

  test('bad figures are refused naming the field and giving an example', () => {
    expect(() => validateLiveLimits({ cpus: 0, memoryBytes: GiB, throttleCpus: null })).toThrow(
      /cpus must be .*e\.g\./,
    );
    expect(() => validateLiveLimits({ cpus: 2, memoryBytes: 1.5, throttleCpus: null })).toThrow(/memoryBytes/);
    expect(() => validateLiveLimits({ cpus: 2, memoryBytes: GiB, throttleCpus: 3 })).toThrow(
      /throttleCpus .* above cpus/,
    );
    expect(() => validateLiveLimits({ cpus: 2, memoryBytes: GiB, throttleCpus: 0.001 })).toThrow(/throttleCpus/);
    expect(() => validateLiveLimits({ cpus: 2, memoryBytes: GiB, throttleCpus: 0.2 })).not.toThrow();
  });
});
