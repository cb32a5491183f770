import { describe, expect, it } from 'vitest';
import { judge } from '../lib/verdict.js';
import { managerDetails } from '../suites/manager/details.js';
import { managerFigures } from '../suites/manager/figures.js';
import { type LoadRun, ManagerData } from '../suites/manager/schema.js';

const latency = (p99: number) => ({ p50: p99 / 4, p90: p99 / 2, p99, max: p99 * 2, mean: p99 / 3 });

function run(endpoint: LoadRun['endpoint'], mode: LoadRun['mode'], over: Partial<LoadRun> = {}): LoadRun {
  const open = mode === 'open';
  const perSecond = open ? 10_000 : endpoint === 'heartbeat' ? 12_000 : 30_000;
  return {
    endpoint,
    mode,
    connections: open ? 1_000 : 100,
    offeredRate: open ? 10_000 : null,
    seconds: 10,
    ok: perSecond * 10,
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    answeredPerSecond: perSecond,
    latencyMs: latency(endpoint === 'heartbeat' ? 8 : 3),
    managerCpuSeconds: endpoint === 'heartbeat' ? 8 : 3,
    loadCpuSeconds: 5,
    ...over,
  };
}

const rep = (i: number, open: Partial<LoadRun> = {}) => ({
  rep: i,
  runs: [run('healthz', 'closed'), run('heartbeat', 'closed'), run('healthz', 'open'), run('heartbeat', 'open', open)],
  listing: { pages: 100, providersSeen: 100_000, complete: true, latencyMs: latency(20 + i) },
});

const storm = (absorbedSeconds: number | null) => ({
  agents: 10_000,
  healthyBefore: 10_000,
  absorbedSeconds,
  fromKillSeconds: absorbedSeconds === null ? null : absorbedSeconds + 0.5,
  recovered: absorbedSeconds === null ? 0 : 10_000,
  recoveredSeconds: absorbedSeconds === null ? null : { p50: 5, p90: 9, max: absorbedSeconds },
  failures: { network: 1200 },
  managerDownSeconds: 0.5,
});

const data = (over: Partial<ManagerData> = {}): ManagerData =>
  ManagerData.parse({
    providers: 100_000,
    seedSeconds: 12,
    pinned: { manager: '0', load: '1' },
    tls: 'TLS 1.3',
    pageLimit: 1000,
    reps: [rep(0), rep(1), rep(2)],
    managerRssBytes: 150 * 1024 ** 2,
    storm: [storm(14), storm(15)],
    profile: { seconds: 6, samples: 5000, top: [{ name: 'writev', selfPercent: 30 }], byArea: { writev: 30 } },
    ...over,
  });

const byId = (figures: ReturnType<typeof managerFigures>, id: string) => {
  const figure = figures.find((f) => f.id === id);
  if (!figure) throw new Error(`no figure ${id}`);
  return figure;
};

describe('manager figuresOf', () => {
  it('gives every goal of issue 11 its figure, met on good hand-made data', () => {
    const figures = managerFigures(data());
    expect(figures.map((f) => f.id)).toEqual([
      'manager.heartbeat.closed-rate',
      'manager.heartbeat.open-p99',
      'manager.heartbeat.cpu',
      'manager.listing.p99',
      'manager.storm.absorbed',
    ]);
    const closed = byId(figures, 'manager.heartbeat.closed-rate');
    expect(closed.subject.samples).toEqual([12_000, 12_000, 12_000]);
    expect(closed.baseline?.samples).toEqual([30_000, 30_000, 30_000]);
    expect(byId(figures, 'manager.heartbeat.cpu').subject.samples[0]).toBeCloseTo((8 / 120_000) * 1000);
    expect(byId(figures, 'manager.listing.p99').subject.samples).toEqual([20, 21, 22]);
    expect(byId(figures, 'manager.storm.absorbed').subject.samples).toEqual([14, 15]);
    for (const id of [
      'manager.heartbeat.closed-rate',
      'manager.heartbeat.open-p99',
      'manager.listing.p99',
      'manager.storm.absorbed',
    ])
      expect(judge(byId(figures, id)).verdict, id).toBe('met');
    expect(judge(byId(figures, 'manager.heartbeat.cpu')).verdict).toBe('context');
  });

  it('fails the open loop when it answered less than 99 % of the offered rate, whatever its latency', () => {
    const behind = data({ reps: [rep(0), rep(1, { answeredPerSecond: 9_800, latencyMs: latency(5) })] });
    const figure = byId(managerFigures(behind), 'manager.heartbeat.open-p99');
    expect(figure.checks?.find((c) => c.what.startsWith('answered'))?.ok).toBe(false);
    expect(judge(figure).verdict).toBe('missed');
  });

  it('fails a run with fewer connections or a lower rate than the goal states, and an unpinned manager', () => {
    const small = data({
      pinned: { manager: null, load: null },
      reps: [rep(0, { connections: 50, offeredRate: 500, answeredPerSecond: 500 }), rep(1)],
    });
    const figure = byId(managerFigures(small), 'manager.heartbeat.open-p99');
    expect(figure.checks?.filter((c) => !c.ok).map((c) => c.what)).toEqual([
      'manager pinned to one core, load generator to another (taskset)',
      'offered 10,000/s over ≥ 1,000 connections',
    ]);
  });

  it('fails the listing below 100,000 providers or with a provider missed, and a storm not absorbed', () => {
    const bad = data({
      providers: 2_000,
      reps: [rep(0), { ...rep(1), listing: { ...rep(1).listing, complete: false } }],
      storm: [storm(12), storm(null)],
    });
    const figures = managerFigures(bad);
    expect(byId(figures, 'manager.listing.p99').checks?.every((c) => !c.ok)).toBe(true);
    const stormFigure = byId(figures, 'manager.storm.absorbed');
    expect(stormFigure.subject.samples[1]).toBeGreaterThan(30);
    expect(judge(stormFigure).verdict).toBe('missed');
  });

  it('has no storm figure when the profile ran no storm, and details render from the data alone', () => {
    expect(managerFigures(data({ storm: [] })).map((f) => f.id)).not.toContain('manager.storm.absorbed');
    const text = managerDetails(data());
    expect(text).toContain('| 1 | open | heartbeat | 1,000 | 10,000 | 10,000 |');
    expect(text).toContain('network: 1,200');
    expect(text).toContain('`writev` 30.0 %');
  });
});
