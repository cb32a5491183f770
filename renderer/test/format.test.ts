import { describe, expect, it } from 'vitest';
import {
  formatBytes,
  formatCpus,
  heartbeatText,
  limitsText,
  offerableText,
  pullText,
  registrationText,
  sentence,
  sliderBounds,
} from '../src/format.js';
import { LogBuffer } from '../src/log-buffer.js';

const GiB = 1024 ** 3;

describe('window formatting', () => {
  it('bytes and CPUs read as people write them', () => {
    expect(formatBytes(23.4 * GiB)).toBe('23.4 GiB');
    expect(formatBytes(256 * 1024 ** 2)).toBe('256.0 MiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(12)).toBe('12 B');
    expect(formatCpus(1)).toBe('1 CPU');
    expect(formatCpus(2)).toBe('2 CPUs');
    expect(formatCpus(1.5)).toBe('1.5 CPUs');
  });

  it("offerable limits: Docker's figures with the host's beside them", () => {
    const host = { cpus: 2, memoryBytes: 23.4 * GiB, model: 'x' };
    expect(offerableText({ docker: { cpus: 2, memoryBytes: 23.4 * GiB }, host })).toBe(
      'Docker can use 2 CPUs / 23.4 GiB; this computer has 2 CPUs / 23.4 GiB',
    );
    expect(offerableText({ docker: null, host })).toBe(
      "Docker is not reachable, so the limits are this computer's: this computer has 2 CPUs / 23.4 GiB",
    );
  });

  it('slider bounds come from Docker when it answers (a VM may hold less than the host), else the host', () => {
    const host = { cpus: 16, memoryBytes: 64 * GiB, model: 'x' };
    // Whole CPUs only: Ray schedules whole CPUs, so 3.7 offers 3.
    expect(sliderBounds({ docker: { cpus: 3.7, memoryBytes: 7.9 * GiB }, host })).toEqual({
      maxCpus: 3,
      maxMemoryMiB: 7936,
    });
    expect(sliderBounds({ docker: null, host })).toEqual({ maxCpus: 16, maxMemoryMiB: 65536 });
    // Never below the schema's minimums, so the slider always has a valid position.
    expect(sliderBounds({ docker: { cpus: 0.2, memoryBytes: 0.5 * GiB }, host })).toEqual({
      maxCpus: 1,
      maxMemoryMiB: 1024,
    });
  });

  it('pull progress text', () => {
    const base = { image: 'ray-agent:dev', currentBytes: 0, totalBytes: 0, fraction: null, done: false, error: null };
    expect(pullText(base)).toBe('Waiting for the image size…');
    expect(pullText({ ...base, currentBytes: GiB / 2, totalBytes: GiB, fraction: 0.5 })).toBe(
      '50% · 512.0 MiB of 1.0 GiB',
    );
    expect(pullText({ ...base, done: true })).toBe('Downloaded ray-agent:dev');
    expect(pullText({ ...base, done: true, error: 'manifest unknown' })).toBe('Download failed');
  });

  it('registration, heartbeat and limits lines', () => {
    expect(registrationText({ state: 'needs_reregistration', providerId: 'prv-1' })).toContain('new enrollment token');
    expect(registrationText({ state: 'something-new', providerId: null })).toBe('Not registered');
    expect(heartbeatText({ healthy: false, lastSuccessAt: null, failingSince: null, consecutiveFailures: 0 })).toBe(
      'No heartbeat yet',
    );
    expect(
      heartbeatText({
        healthy: false,
        lastSuccessAt: null,
        failingSince: '2025-01-01T00:00:00Z',
        consecutiveFailures: 1,
      }),
    ).toMatch(/^Failing since \d\d:\d\d \(1 failure in a row\)$/);
    expect(limitsText({ cpus: 2, memoryBytes: 4 * GiB })).toBe('2 CPUs, 4.0 GiB memory');
    expect(limitsText({ cpus: 2, memoryBytes: 4 * GiB, rayCpus: 2 })).toBe('2 CPUs, 4.0 GiB memory');
    // A fractional limit set by hand: Ray schedules whole CPUs, and the window says so.
    expect(limitsText({ cpus: 2.5, memoryBytes: 4 * GiB, rayCpus: 2 })).toBe('Ray uses 2 of 2.5 CPUs, 4.0 GiB memory');
    expect(limitsText({ cpus: 0.5, memoryBytes: GiB, rayCpus: 1 })).toBe('0.5 CPUs, 1.0 GiB memory');
    expect(sentence('must be at least 0.5 CPU')).toBe('Must be at least 0.5 CPU');
  });
});

describe('LogBuffer', () => {
  it('joins chunks split mid-line and keeps only the last N lines', () => {
    const buffer = new LogBuffer(3);
    buffer.reset('a\nb\n');
    buffer.append('c');
    expect(buffer.lines()).toEqual(['a', 'b', 'c']);
    buffer.append('d\r\ne\n');
    expect(buffer.lines()).toEqual(['b', 'cd', 'e']);
    buffer.append('f\ng');
    expect(buffer.lines()).toEqual(['e', 'f', 'g']);
    expect(buffer.text()).toBe('e\nf\ng');
  });
});
