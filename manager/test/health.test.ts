import { describe, expect, it } from 'vitest';
import { deriveHealth } from '../src/health.js';

describe('deriveHealth', () => {
  const now = new Date('2026-01-01T12:00:00.000Z');
  const ago = (seconds: number) => new Date(now.getTime() - seconds * 1000);

  it('is never without a heartbeat', () => {
    expect(deriveHealth(null, null, 10, now)).toBe('never');
  });

  it('is stopped when the last heartbeat said stopped, however old', () => {
    expect(deriveHealth(ago(1), 'stopped', 10, now)).toBe('stopped');
    expect(deriveHealth(ago(86_400), 'stopped', 10, now)).toBe('stopped');
  });

  it('is healthy within 3 intervals, late within 10, offline after', () => {
    expect(deriveHealth(ago(0), 'contributing', 10, now)).toBe('healthy');
    expect(deriveHealth(ago(30), 'contributing', 10, now)).toBe('healthy');
    expect(deriveHealth(ago(30.001), 'contributing', 10, now)).toBe('late');
    expect(deriveHealth(ago(100), 'draining', 10, now)).toBe('late');
    expect(deriveHealth(ago(100.001), 'contributing', 10, now)).toBe('offline');
  });

  it('scales with the interval', () => {
    expect(deriveHealth(ago(50), 'contributing', 20, now)).toBe('healthy');
    expect(deriveHealth(ago(50), 'contributing', 5, now)).toBe('late');
    expect(deriveHealth(ago(50), 'contributing', 1, now)).toBe('offline');
  });

  it('treats a heartbeat from the future (clock skew) as healthy', () => {
    expect(deriveHealth(new Date(now.getTime() + 5000), 'error', 10, now)).toBe('healthy');
  });
});
