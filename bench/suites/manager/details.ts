import { fmt, thousands } from '../../lib/format.js';
import type { ManagerData } from './schema.js';

const MiB = 1024 ** 2;

export function managerDetails(data: ManagerData): string {
  const out: string[] = [];
  out.push(
    `${thousands(data.providers)} providers stored through the manager's own store code in ${fmt(data.seedSeconds)} s; ` +
      `manager RSS after the load ${fmt(data.managerRssBytes / MiB)} MiB. ${data.tls}. Manager on core ` +
      `${data.pinned.manager ?? '(not pinned)'}, load generator (autocannon) on core ${data.pinned.load ?? '(not pinned)'}.`,
  );
  out.push(
    '',
    '| Rep. | Mode | Endpoint | Conn. | Offered/s | Answered/s | p50 ms | p99 ms | max ms | Errors | Manager CPU ms/req |',
  );
  out.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const rep of data.reps)
    for (const r of rep.runs)
      out.push(
        `| ${rep.rep + 1} | ${r.mode} | ${r.endpoint} | ${thousands(r.connections)} | ${r.offeredRate === null ? '–' : thousands(r.offeredRate)} | ` +
          `${thousands(r.answeredPerSecond)} | ${fmt(r.latencyMs.p50)} | ${fmt(r.latencyMs.p99)} | ${fmt(r.latencyMs.max)} | ` +
          `${r.errors + r.timeouts + r.non2xx} | ${r.ok > 0 ? fmt((r.managerCpuSeconds / r.ok) * 1000) : '–'} |`,
      );
  out.push(
    '',
    '| Rep. | Listing pages | Providers seen | Complete | p50 ms | p99 ms | max ms |',
    '|---|---|---|---|---|---|---|',
  );
  for (const rep of data.reps) {
    const l = rep.listing;
    out.push(
      `| ${rep.rep + 1} | ${l.pages} | ${thousands(l.providersSeen)} | ${l.complete ? 'yes' : '**no**'} | ${fmt(l.latencyMs.p50)} | ${fmt(l.latencyMs.p99)} | ${fmt(l.latencyMs.max)} |`,
    );
  }
  if (data.storm.length > 0) {
    out.push(
      '',
      '| Storm | Agents | Healthy before | Manager down, s | Back from restart, s (p50 / p90 / last) | From kill, s | Failed attempts |',
    );
    out.push('|---|---|---|---|---|---|---|');
    for (const [i, s] of data.storm.entries()) {
      const failures = Object.entries(s.failures)
        .map(([kind, n]) => `${kind}: ${thousands(n)}`)
        .join(', ');
      const back = s.recoveredSeconds
        ? `${fmt(s.recoveredSeconds.p50)} / ${fmt(s.recoveredSeconds.p90)} / ${fmt(s.recoveredSeconds.max)}`
        : '**not all**';
      out.push(
        `| ${i + 1} | ${thousands(s.agents)} | ${thousands(s.healthyBefore)} | ${fmt(s.managerDownSeconds)} | ${back} | ${s.fromKillSeconds === null ? '–' : fmt(s.fromKillSeconds)} | ${failures || 'none'} |`,
      );
    }
  }
  if (data.profile) {
    const p = data.profile;
    const areas = Object.entries(p.byArea)
      .map(([area, pct]) => `${area} ${fmt(pct)} %`)
      .join(', ');
    const top = p.top
      .slice(0, 10)
      .map((t) => `\`${t.name}\` ${fmt(t.selfPercent)} %`)
      .join(', ');
    out.push(
      '',
      `CPU profile (\`node --cpu-prof\`, ${fmt(p.seconds)} s of closed-loop heartbeats, self time of ${thousands(p.samples)} busy samples) by area: ${areas}. Top functions: ${top}.`,
    );
  }
  return out.join('\n');
}
