import { describe, expect, it } from 'vitest';
import { formatBytes, parseCpus, parseMemory } from '../src/config/quantity.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('parseMemory', () => {
  it.each<[string, number]>([
    ['1073741824', GiB],
    ['512m', 512 * MiB],
    ['512M', 512 * MiB],
    ['512MiB', 512 * MiB],
    ['512mb', 512 * MiB],
    ['4g', 4 * GiB],
    ['4Gi', 4 * GiB],
    ['1.5g', 1.5 * GiB],
    ['64k', 64 * KiB],
    ['1t', 1024 * GiB],
    ['100b', 100],
    [' 2 g ', 2 * GiB],
  ])('%j is %d bytes', (text, bytes) => {
    expect(parseMemory(text)).toBe(bytes);
  });

  it.each<[string, RegExp]>([
    ['abc', /is not a size/],
    ['', /is not a size/],
    ['-1g', /is not a size/],
    ['1e9', /is not a size/],
    ['4x', /unknown unit "x"/],
    ['4gbit', /unknown unit "gbit"/],
    ['0', /more than zero/],
    ['0m', /more than zero/],
    ['0.1', /more than zero/],
  ])('%j is refused: %s', (text, problem) => {
    const result = parseMemory(text);
    expect(typeof result).toBe('string');
    expect(result).toMatch(problem);
  });
});

describe('parseCpus', () => {
  it.each<[string, number]>([
    ['1', 1],
    ['2', 2],
    ['1.5', 1.5],
    ['0.5', 0.5],
    [' 4 ', 4],
    ['4096', 4096],
  ])('%j is %d CPUs', (text, cpus) => {
    expect(parseCpus(text)).toBe(cpus);
  });

  it.each<[string, RegExp]>([
    ['0', /more than zero/],
    ['0.0', /more than zero/],
    ['-1', /not a number of CPUs/],
    ['two', /not a number of CPUs/],
    ['1,5', /not a number of CPUs/],
    ['', /not a number of CPUs/],
    ['4097', /larger than any machine/],
  ])('%j is refused: %s', (text, problem) => {
    const result = parseCpus(text);
    expect(typeof result).toBe('string');
    expect(result).toMatch(problem);
  });
});

describe('formatBytes', () => {
  it.each<[number, string]>([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [512 * MiB, '512 MiB'],
    [GiB, '1 GiB'],
    [1.5 * GiB, '1.5 GiB'],
    [2 * 1024 * GiB, '2 TiB'],
    [2048 * 1024 * GiB, '2048 TiB'],
  ])('%d is %j', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it('round-trips through parseMemory for whole units', () => {
    for (const text of ['512m', '4g', '64k', '3t']) {
      const bytes = parseMemory(text);
      expect(typeof bytes).toBe('number');
      expect(parseMemory(formatBytes(bytes as number).replace(' ', ''))).toBe(bytes);
    }
  });
});
