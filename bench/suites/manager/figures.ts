import type { Check, Figure } from '../../lib/figure.js';
import { thousands } from '../../lib/format.js';
import type { LoadRun, ManagerData } from './schema.js';

/** The goals of issue 11, and the setting they are stated for. */
export const GOALS = {
  heartbeatsPerSecond: 10_000,
  openP99Ms: 20,
  openConnections: 1_000,
  listingP99Ms: 50,
  listingProviders: 100_000,
  stormSeconds: 30,
  stormAgents: 10_000,
  /** An open-loop run counts only if it answered this share of what it offered. */
  answeredShare: 0.99,
} as const;

const SECTION = 'Manager';

function runsOf(data: ManagerData, mode: LoadRun['mode'], endpoint: LoadRun['endpoint']): LoadRun[] {
  return data.reps.map((rep) => {
    const run = rep.runs.find((r) => r.mode === mode && r.endpoint === endpoint);
    if (!run) throw new Error(`manager rep ${rep.rep}: no ${mode}-loop ${endpoint} run`);
    return run;
  });
}

const clean = (runs: LoadRun[]) => runs.every((r) => r.errors === 0 && r.timeouts === 0 && r.non2xx === 0);

export function managerFigures(data: ManagerData): Figure[] {
  const pinned: Check = {
    what: 'manager pinned to one core, load generator to another (taskset)',
    ok: data.pinned.manager !== null && data.pinned.load !== null,
  };
  const closedHb = runsOf(data, 'closed', 'heartbeat');
  const closedHz = runsOf(data, 'closed', 'healthz');
  const openHb = runsOf(data, 'open', 'heartbeat');
  const openHz = runsOf(data, 'open', 'healthz');
  const perRequestMs = (r: LoadRun) => (r.ok > 0 ? (r.managerCpuSeconds / r.ok) * 1000 : 0);
  const figures: Figure[] = [
    {
      id: 'manager.heartbeat.closed-rate',
      section: SECTION,
      label: `Heartbeats answered per second at most (closed loop, ${closedHb[0]?.connections ?? 0} TLS connections), ${thousands(data.providers)} providers`,
      unit: 'heartbeats/s',
      subject: { label: 'POST /api/heartbeat', samples: closedHb.map((r) => r.answeredPerSecond) },
      baseline: { label: 'GET /healthz, same run', samples: closedHz.map((r) => r.answeredPerSecond) },
      goal: { kind: 'at-least', value: GOALS.heartbeatsPerSecond },
      checks: [
        pinned,
        { what: 'every heartbeat answered 200 (no errors, timeouts or other statuses)', ok: clean(closedHb) },
      ],
    },
    {
      id: 'manager.heartbeat.open-p99',
      section: SECTION,
      label: `Heartbeat latency p99 at ${thousands(openHb[0]?.offeredRate ?? 0)}/s offered (open loop, ${thousands(openHb[0]?.connections ?? 0)} TLS connections)`,
      unit: 'ms',
      subject: { label: 'POST /api/heartbeat', samples: openHb.map((r) => r.latencyMs.p99) },
      baseline: { label: 'GET /healthz at the same rate, same run', samples: openHz.map((r) => r.latencyMs.p99) },
      goal: { kind: 'at-most', value: GOALS.openP99Ms },
      checks: [
        pinned,
        {
          what: `offered ${thousands(GOALS.heartbeatsPerSecond)}/s over ≥ ${thousands(GOALS.openConnections)} connections`,
          ok: openHb.every(
            (r) => (r.offeredRate ?? 0) >= GOALS.heartbeatsPerSecond && r.connections >= GOALS.openConnections,
          ),
        },
        {
          what: `answered ≥ ${GOALS.answeredShare * 100} % of the offered rate in every repetition`,
          ok: openHb.every((r) => r.answeredPerSecond >= GOALS.answeredShare * (r.offeredRate ?? 0)),
        },
        { what: 'every heartbeat answered 200 (no errors, timeouts or other statuses)', ok: clean(openHb) },
      ],
    },
    {
      id: 'manager.heartbeat.cpu',
      section: SECTION,
      label: 'Manager CPU per request, closed loop (one core’s ceiling = 1000 / this)',
      unit: 'ms',
      subject: { label: 'POST /api/heartbeat', samples: closedHb.map(perRequestMs) },
      baseline: { label: 'GET /healthz, same run', samples: closedHz.map(perRequestMs) },
      goal: { kind: 'none' },
    },
    {
      id: 'manager.listing.p99',
      section: SECTION,
      label: `Listing, one page of ${thousands(data.pageLimit)} (the largest), p99 over walks of all ${thousands(data.providers)} providers`,
      unit: 'ms',
      subject: { label: 'GET /api/providers?limit=…&after=…', samples: data.reps.map((r) => r.listing.latencyMs.p99) },
      baseline: null,
      goal: { kind: 'at-most', value: GOALS.listingP99Ms },
      checks: [
        {
          what: `≥ ${thousands(GOALS.listingProviders)} providers stored`,
          ok: data.providers >= GOALS.listingProviders,
        },
        { what: 'every walk saw every provider exactly once', ok: data.reps.every((r) => r.listing.complete) },
      ],
    },
  ];
  if (data.storm.length > 0) {
    const agents = data.storm[0]?.agents ?? 0;
    figures.push({
      id: 'manager.storm.absorbed',
      section: SECTION,
      label: `Reconnect storm: ${thousands(agents)} agents (the agent's own heartbeat loop and backoff) all heartbeating again after a manager kill, from its restart`,
      unit: 's',
      subject: {
        label: 'last agent’s first accepted heartbeat',
        // Not absorbed within the timeout: the whole wait counts (and the check fails).
        samples: data.storm.map((r) => r.absorbedSeconds ?? r.managerDownSeconds + 3600),
      },
      baseline: null,
      goal: { kind: 'at-most', value: GOALS.stormSeconds },
      checks: [
        { what: `≥ ${thousands(GOALS.stormAgents)} agents`, ok: agents >= GOALS.stormAgents },
        { what: 'every agent heartbeating before the kill', ok: data.storm.every((r) => r.healthyBefore === r.agents) },
        { what: 'every agent heartbeating again', ok: data.storm.every((r) => r.absorbedSeconds !== null) },
      ],
    });
  }
  return figures;
}
