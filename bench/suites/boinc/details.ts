import { fmt } from '../../lib/format.js';
import type { BoincData } from './schema.js';

const MiB = 1024 ** 2;

export function boincDetails(data: BoincData): string {
  if (data.skipped) return `BOINC: skipped (${data.skipped}).`;
  const rows = ['| Rep. | Window, s | RSS, MiB | PSS, MiB | CPU s/min |', '|---|---|---|---|---|'];
  for (const [i, r] of data.reps.entries())
    rows.push(
      `| ${i + 1} | ${fmt(r.seconds)} | ${fmt(r.rssBytes / MiB)} | ${fmt(r.pssBytes / MiB)} | ${fmt(r.cpuSecondsPerMinute)} |`,
    );
  const isolation = data.isolation
    ? ` Its network namespace at the end held the interfaces ${data.isolation.interfaces.join(', ')} (down), ${data.isolation.tcpSockets} TCP and ${data.isolation.udpSockets} UDP sockets.`
    : '';
  return `${rows.join('\n')}\n\n\`${data.command ?? 'boinc'}\` (${data.version ?? '?'}).${isolation}`;
}
