import type { OverlayResult, OverlaySession } from './schema.js';
import { mean, median, summarize } from './stats.js';
import type { Figure } from './summary.js';

const SECTION = '8. Overlay against direct mode';

/** Pairs of (direct, overlay) sessions, by repetition. */
function pairs(sessions: OverlaySession[]): Array<{ direct: OverlaySession; overlay: OverlaySession }> {
  const out: Array<{ direct: OverlaySession; overlay: OverlaySession }> = [];
  for (const rep of [...new Set(sessions.map((s) => s.rep))].sort((a, b) => a - b)) {
    const direct = sessions.find((s) => s.rep === rep && s.mode === 'direct');
    const overlay = sessions.find((s) => s.rep === rep && s.mode === 'overlay');
    if (direct && overlay) out.push({ direct, overlay });
  }
  return out;
}

/** A figure of one value per session, overlay against direct of the same repetition. */
function paired(
  list: ReturnType<typeof pairs>,
  value: (s: OverlaySession) => number,
): { overlay: number[]; direct: number[]; ratio: number[] } {
  const overlay = list.map((p) => value(p.overlay));
  const direct = list.map((p) => value(p.direct));
  return { overlay, direct, ratio: overlay.map((v, i) => v / (direct[i] ?? Number.NaN)) };
}

export const cpuThroughput = (s: OverlaySession) => mean(s.cpu.map((b) => b.perSecond));
export const tinyThroughput = (s: OverlaySession) => mean(s.tiny.map((b) => b.perSecond));
export const objectMBps = (s: OverlaySession) => median(s.transfer.mbPerSecond);

export function overlayFigures(result: OverlayResult): Figure[] {
  const list = pairs(result.data.sessions);
  const figures: Figure[] = [];

  // Every join of a repetition (providers A and B) against the same provider's join in direct mode.
  const overlayJoins = list.flatMap((p) => p.overlay.joins.map((j) => j.contributingSeconds));
  const directJoins = list.flatMap((p) => p.direct.joins.map((j) => j.contributingSeconds));
  const joinDifference = summarize(overlayJoins.map((v, i) => v - (directJoins[i] ?? Number.NaN)));
  figures.push({
    section: SECTION,
    name: '`docker run` to the status `contributing`, s (overlay: from the tunnel container’s `docker run`)',
    unit: 's',
    subject: summarize(overlayJoins),
    baseline: { name: 'direct mode, same image and head', summary: summarize(directJoins) },
    ratio: summarize(overlayJoins.map((v, i) => v / (directJoins[i] ?? Number.NaN))),
    difference: joinDifference,
    goal: 'within 1 s of direct',
    met: list.length ? joinDifference.median <= 1 : null,
  });

  const loops = result.settings as { cpu?: { loops?: number } } | null;
  const cpu = paired(list, cpuThroughput);
  const cpuSeconds = median(list.flatMap((p) => [...p.overlay.cpu, ...p.direct.cpu].map((b) => b.cpuPerTask)));
  figures.push({
    section: SECTION,
    name: `CPU-bound tasks pinned to the provider (${loops?.cpu?.loops?.toLocaleString('en') ?? '?'} loop iterations, ${cpuSeconds.toFixed(2)} CPU s each), tasks/s`,
    unit: 'tasks/s',
    subject: summarize(cpu.overlay),
    baseline: { name: 'direct mode', summary: summarize(cpu.direct) },
    ratio: summarize(cpu.ratio),
    goal: 'ratio ≥ 0.98',
    met: list.length ? median(cpu.ratio) >= 0.98 : null,
  });

  const tiny = paired(list, tinyThroughput);
  figures.push({
    section: SECTION,
    name: 'Tiny tasks (no-op, return their argument) pinned to the provider, tasks/s',
    unit: 'tasks/s',
    subject: summarize(tiny.overlay),
    baseline: { name: 'direct mode', summary: summarize(tiny.direct) },
    ratio: summarize(tiny.ratio),
    goal: 'ratio ≥ 0.8',
    met: list.length ? median(tiny.ratio) >= 0.8 : null,
  });

  const mib = (result.data.sessions[0]?.transfer.bytes ?? 0) / 1024 ** 2;
  const objects = paired(list, objectMBps);
  figures.push({
    section: SECTION,
    name: `Object transfer between two providers (${mib} MiB \`ray.put\` on B, \`ray.get\` in a task on A), MB/s`,
    unit: 'MB/s',
    subject: summarize(objects.overlay),
    baseline: { name: 'direct mode (both on the cluster network)', summary: summarize(objects.direct) },
    ratio: summarize(objects.ratio),
    goal: '(reported beside raw TCP)',
    met: null,
  });

  const tcp = paired(list, (s) => s.tcp.mbPerSecond);
  figures.push({
    section: SECTION,
    name: `Raw TCP B → A (${result.data.tcpTool.split(' ').slice(0, 2).join(' ')}, the same path as the objects), MB/s`,
    unit: 'MB/s',
    subject: summarize(tcp.overlay),
    baseline: { name: 'direct mode', summary: summarize(tcp.direct) },
    ratio: summarize(tcp.ratio),
    goal: '(baseline of the line above)',
    met: null,
  });

  const share = paired(list, (s) => objectMBps(s) / s.tcp.mbPerSecond);
  figures.push({
    section: SECTION,
    name: 'Object transfer ÷ raw TCP on the same path (how much of the link Ray’s object manager uses)',
    unit: '',
    subject: summarize(share.overlay),
    baseline: { name: 'direct mode, the same quotient', summary: summarize(share.direct) },
    ratio: summarize(share.ratio),
    goal: '(context)',
    met: null,
  });
  return figures;
}

const n = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

/** One row per session: where each figure of the table comes from. */
export function overlayDetail(result: OverlayResult): string {
  const rows = [
    '| Rep. | Mode (order) | Joins A, B, s (tunnel up at) | CPU tasks/s (CPU s per task) | Tiny tasks/s | Objects MB/s | Raw TCP MB/s (retransmits) |',
    '|---|---|---|---|---|---|---|',
  ];
  const sessions = [...result.data.sessions].sort((a, b) => a.rep - b.rep || a.position - b.position);
  for (const s of sessions) {
    const joins = s.joins
      .map((j) => `${n(j.contributingSeconds)}${j.tunnelUpSeconds === null ? '' : ` (${n(j.tunnelUpSeconds)})`}`)
      .join(', ');
    rows.push(
      `| ${s.rep + 1} | ${s.mode} (${s.position === 0 ? 'first' : 'second'}) | ${joins} | ${s.cpu.map((b) => `${n(b.perSecond)} (${n(b.cpuPerTask)})`).join(', ')} | ${s.tiny.map((b) => n(b.perSecond, 0)).join(', ')} | ${s.transfer.mbPerSecond.map((v) => n(v, 0)).join(', ')} | ${n(s.tcp.mbPerSecond, 0)} (${s.tcp.retransmits ?? '–'}) |`,
    );
  }
  return rows.join('\n');
}
