import { fmt } from '../../lib/format.js';
import type { OverlayData } from './schema.js';

/** One row per session: where each figure comes from. */
export function overlayDetails(data: OverlayData): string {
  const rows = [
    '| Rep. | Mode (order) | Joins A, B, s (tunnel up at) | CPU tasks/s (CPU s per task) | Tiny tasks/s | Objects MB/s | Raw TCP MB/s (retransmits) |',
    '|---|---|---|---|---|---|---|',
  ];
  const sessions = [...data.sessions].sort((a, b) => a.rep - b.rep || a.position - b.position);
  for (const s of sessions) {
    const joins = s.joins
      .map((j) => `${fmt(j.contributingSeconds)}${j.tunnelUpSeconds === null ? '' : ` (${fmt(j.tunnelUpSeconds)})`}`)
      .join(', ');
    rows.push(
      `| ${s.rep + 1} | ${s.mode} (${s.position === 0 ? 'first' : 'second'}) | ${joins} | ${s.cpu.map((b) => `${fmt(b.perSecond)} (${fmt(b.cpuPerTask)})`).join(', ')} | ${s.tiny.map((b) => fmt(b.perSecond, 0)).join(', ')} | ${s.transfer.mbPerSecond.map((v) => fmt(v, 0)).join(', ')} | ${fmt(s.tcp.mbPerSecond, 0)} (${s.tcp.retransmits ?? '–'}) |`,
    );
  }
  return rows.join('\n');
}
