import type { Figure } from '../../lib/figure.js';
import { mean, median } from '../../lib/stats.js';
import type { OverlayData, OverlaySession } from './schema.js';

const SECTION = 'Overlay against direct mode';

interface Pair {
  direct: OverlaySession;
  overlay: OverlaySession;
}

/** Pairs of (direct, overlay) sessions, by repetition: measured back to back, in alternating order. */
export function pairs(sessions: OverlaySession[]): Pair[] {
  const out: Pair[] = [];
  for (const rep of [...new Set(sessions.map((s) => s.rep))].sort((a, b) => a - b)) {
    const direct = sessions.find((s) => s.rep === rep && s.mode === 'direct');
    const overlay = sessions.find((s) => s.rep === rep && s.mode === 'overlay');
    if (direct && overlay) out.push({ direct, overlay });
  }
  return out;
}

export const cpuThroughput = (s: OverlaySession) => mean(s.cpu.map((b) => b.perSecond));
export const tinyThroughput = (s: OverlaySession) => mean(s.tiny.map((b) => b.perSecond));
export const objectMBps = (s: OverlaySession) => median(s.transfer.mbPerSecond);

const arms = (list: Pair[], value: (s: OverlaySession) => number) => ({
  subject: { label: 'overlay (tunnel + agent behind NAT)', samples: list.map((p) => value(p.overlay)) },
  baseline: { label: 'direct mode, same image and head', samples: list.map((p) => value(p.direct)) },
});

export function overlayFigures(data: OverlayData): Figure[] {
  const list = pairs(data.sessions);
  if (!list.length) return [];
  // Provider A's join against A's in direct mode, B's against B's: each pair is two fresh providers per mode.
  const joins = list.flatMap((p) => p.overlay.joins.map((join, i) => ({ overlay: join, direct: p.direct.joins[i] })));
  const joined = joins.filter((j) => j.direct !== undefined);
  const tunnelUp = joined.map((j) => j.overlay.tunnelUpSeconds).filter((v): v is number => v !== null);
  const cpuSeconds = median(list.flatMap((p) => [...p.overlay.cpu, ...p.direct.cpu].map((b) => b.cpuPerTask)));
  const mib = (data.sessions[0]?.transfer.bytes ?? 0) / 1024 ** 2;
  const figures: Figure[] = [
    {
      id: 'overlay.join.contributing',
      section: SECTION,
      label: '`docker run` to the status `contributing` (overlay: from the tunnel container’s `docker run`), s',
      unit: 's',
      subject: { label: 'overlay', samples: joined.map((j) => j.overlay.contributingSeconds) },
      baseline: { label: 'direct mode', samples: joined.map((j) => j.direct?.contributingSeconds ?? 0) },
      goal: { kind: 'difference-at-most', value: 1 },
    },
    {
      id: 'overlay.compute.cpu',
      section: SECTION,
      label: `CPU-bound tasks pinned to the provider (about ${cpuSeconds.toFixed(1)} CPU s each), tasks/s`,
      unit: 'tasks/s',
      ...arms(list, cpuThroughput),
      goal: { kind: 'ratio-at-least', value: 0.98 },
    },
    {
      id: 'overlay.compute.tiny',
      section: SECTION,
      label: 'Tiny tasks (return their argument) pinned to the provider, tasks/s',
      unit: 'tasks/s',
      ...arms(list, tinyThroughput),
      goal: { kind: 'ratio-at-least', value: 0.8 },
    },
    {
      id: 'overlay.objects.throughput',
      section: SECTION,
      label: `Object transfer between two providers (${mib} MiB \`ray.put\` on B, \`ray.get\` in a task on A), MB/s`,
      unit: 'MB/s',
      ...arms(list, objectMBps),
      goal: { kind: 'none' },
    },
    {
      id: 'overlay.tcp.throughput',
      section: SECTION,
      label: `Raw TCP B → A (${data.tcpTool.split(' ').slice(0, 2).join(' ')}, the objects' path), MB/s`,
      unit: 'MB/s',
      ...arms(list, (s) => s.tcp.mbPerSecond),
      goal: { kind: 'none' },
    },
    {
      id: 'overlay.objects.share-of-tcp',
      section: SECTION,
      label: 'Object transfer ÷ raw TCP on the same path (how much of the link Ray’s object manager uses)',
      unit: 'fraction',
      ...arms(list, (s) => objectMBps(s) / s.tcp.mbPerSecond),
      goal: { kind: 'none' },
    },
  ];
  if (tunnelUp.length)
    figures.splice(1, 0, {
      id: 'overlay.join.tunnel-up',
      section: SECTION,
      label: 'Overlay: `docker run` to the tunnel `up` (part of the join above), s',
      unit: 's',
      subject: { label: 'overlay', samples: tunnelUp },
      baseline: null,
      goal: { kind: 'none' },
    });
  return figures;
}
