import { describe, expect, it } from 'vitest';
import { judge } from '../lib/verdict.js';
import { details } from '../suites/image/details.js';
import { figuresOf } from '../suites/image/figures.js';
import { cleanStep } from '../suites/image/measure.js';
import { ImageData } from '../suites/image/schema.js';

// Hand-made data: three layers, a few paths, three import timings.
const data = (over: Partial<ImageData> = {}): ImageData =>
  ImageData.parse({
    image: 'ray-agent:test',
    imageId: 'sha256:0123456789abcdef0123456789abcdef',
    sizeBytes: 280_000_000,
    layers: [
      { createdBy: '', tarBytes: 80_000_000, gzipBytes: 28_000_000 },
      { createdBy: 'COPY dir:abc in /opt/ray', tarBytes: 110_000_000, gzipBytes: 40_000_000 },
      { createdBy: 'COPY file:def in /usr/local/bin/node', tarBytes: 100_000_000, gzipBytes: 39_000_000 },
    ],
    diffIds: 3,
    paths: [
      { path: '/', bytes: 290_000_000 },
      { path: '/opt', bytes: 110_000_000 },
      { path: '/opt/ray', bytes: 110_000_000 },
      { path: '/opt/ray/lib/python3.11/site-packages/ray/_raylet.so', bytes: 32_000_000 },
      { path: '/opt/ray/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet', bytes: 23_000_000 },
      { path: '/usr/local/bin/node', bytes: 107_000_000 },
    ],
    importRaySeconds: [0.9, 1.0, 1.1],
    ...over,
  });

const byId = (figures: ReturnType<typeof figuresOf>, id: string) => {
  const figure = figures.find((candidate) => candidate.id === id);
  if (!figure) throw new Error(`no figure ${id}`);
  return figure;
};

describe('image figuresOf', () => {
  it('gives the engine size and the sum of gzip layers in MB, exact, against 300 / 120 MB', () => {
    const figures = figuresOf(data());
    const uncompressed = byId(figures, 'image.size.uncompressed');
    expect(uncompressed.subject.samples).toEqual([280]);
    expect(uncompressed.goal).toEqual({ kind: 'at-most', value: 300 });
    expect(uncompressed.exact).toBe(true);
    // The floor: raylet + _raylet.so + node.
    expect(uncompressed.floor?.value).toBeCloseTo(162, 6);
    const compressed = byId(figures, 'image.size.compressed');
    expect(compressed.subject.samples).toEqual([107]);
    expect(compressed.goal).toEqual({ kind: 'at-most', value: 120 });
    expect(judge(uncompressed).verdict).toBe('met');
    expect(judge(compressed).verdict).toBe('met');
  });

  it('misses the goals when the image is over them', () => {
    const figures = figuresOf(data({ sizeBytes: 300_000_001 }));
    expect(judge(byId(figures, 'image.size.uncompressed')).verdict).toBe('missed');
    const big = figuresOf(
      data({ layers: [{ createdBy: '', tarBytes: 400_000_000, gzipBytes: 120_500_000 }], diffIds: 1 }),
    );
    expect(judge(byId(big, 'image.size.compressed')).verdict).toBe('missed');
  });

  it('fails the compressed figure when a layer was not measured', () => {
    const compressed = byId(figuresOf(data({ diffIds: 4 })), 'image.size.compressed');
    expect(compressed.checks?.[0]?.ok).toBe(false);
    expect(judge(compressed).verdict).toBe('missed');
  });

  it('has no floor when a floor binary is missing from the paths', () => {
    const figure = byId(
      figuresOf(data({ paths: [{ path: '/usr/local/bin/node', bytes: 107_000_000 }] })),
      'image.size.uncompressed',
    );
    expect(figure.floor).toBeUndefined();
  });

  it('keeps import ray as context, one sample per run', () => {
    const figure = byId(figuresOf(data()), 'image.start.import-ray');
    expect(figure.subject.samples).toEqual([0.9, 1.0, 1.1]);
    expect(judge(figure).verdict).toBe('context');
  });
});

describe('image details', () => {
  it('lists every layer with its sizes and the largest paths, skipping a folder that is all one child', () => {
    const text = details(data());
    expect(text).toContain('| `(the base image)` | 80.0 | 28.0 |');
    expect(text).toContain('| **all 3 layers** | **290.0** | **107.0** |');
    expect(text).toContain('| `/opt/ray` | 110.0 |');
    expect(text).not.toContain('| `/opt` |');
    expect(text).not.toContain('| `/` |');
  });

  it('cleans the build steps docker history records', () => {
    expect(cleanStep('|1 PIP_INDEX_URL=http://127.0.0.1:1/simple /bin/sh -c apt-get  update')).toBe('apt-get update');
    expect(cleanStep('/bin/sh -c #(nop) COPY file:abc in /x')).toBe('COPY file:abc in /x');
  });
});
