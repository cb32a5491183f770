import type { Figure } from '../../lib/figure.js';
import type { BoincData } from './schema.js';

const SECTION = 'Footprint while idle: reference';
const MiB = 1024 ** 2;

/** Debian's boinc-client idle: what a volunteer-computing client with no runtime costs (context, no goal). */
export function boincFigures(data: BoincData): Figure[] {
  if (data.skipped || !data.reps.length) return [];
  const label = `Debian \`boinc-client\` ${data.version?.split(' ')[0] ?? ''}`.trim();
  return [
    {
      id: 'boinc.idle.rss',
      section: SECTION,
      label: `${label} idle, attached to no project: resident memory (RSS), MiB`,
      unit: 'MiB',
      subject: { label, samples: data.reps.map((r) => r.rssBytes / MiB) },
      baseline: null,
      goal: { kind: 'none' },
    },
    {
      id: 'boinc.idle.pss',
      section: SECTION,
      label: `${label} idle: proportional set size (PSS), MiB`,
      unit: 'MiB',
      subject: { label, samples: data.reps.map((r) => r.pssBytes / MiB) },
      baseline: null,
      goal: { kind: 'none' },
    },
    {
      id: 'boinc.idle.cpu',
      section: SECTION,
      label: `${label} idle: CPU, % of one core`,
      unit: '% of one core',
      subject: { label, samples: data.reps.map((r) => (r.cpuSecondsPerMinute / 60) * 100) },
      baseline: null,
      goal: { kind: 'none' },
    },
  ];
}
