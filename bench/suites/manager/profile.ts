import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { CpuProfile } from './schema.js';

/** Self time from a V8 .cpuprofile, by function and by area (bundle, Node internals, native, GC). */
export function summarizeProfile(file: string): CpuProfile {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
    startTime: number;
    endTime: number;
  };
  const byId = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const self = new Map<string, number>();
  const areas: Record<string, number> = {};
  let busy = 0;
  for (const id of profile.samples) {
    const frame = byId.get(id);
    if (!frame || frame.functionName === '(idle)') continue;
    busy++;
    const where = frame.url ? `${basename(frame.url)}:${frame.lineNumber + 1}` : '';
    const name = `${frame.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
    self.set(name, (self.get(name) ?? 0) + 1);
    const area = frame.url.startsWith('node:')
      ? frame.url.split('/').slice(0, 2).join('/')
      : frame.url.endsWith('manager.mjs')
        ? 'manager bundle (fastify, pino, zod, SQLite calls, app)'
        : frame.url
          ? basename(frame.url)
          : frame.functionName;
    areas[area] = (areas[area] ?? 0) + 1;
  }
  const percent = (count: number) => Math.round((count / Math.max(1, busy)) * 1000) / 10;
  return {
    seconds: (profile.endTime - profile.startTime) / 1e6,
    samples: busy,
    top: [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 20)
      .map(([name, count]) => ({ name, selfPercent: percent(count) })),
    byArea: Object.fromEntries(
      Object.entries(areas)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 15)
        .map(([area, count]) => [area, percent(count)]),
    ),
  };
}
