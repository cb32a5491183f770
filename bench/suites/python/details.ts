import { fmt } from '../../lib/format.js';
import { mean } from '../../lib/stats.js';
import type { PythonData } from './schema.js';

export function pythonDetails(data: PythonData): string {
  const rows = [
    '| Rep. (first) | Loop CPU s: image / host | Loop command wall s: image / host | `import ray` wall s: image / host |',
    '|---|---|---|---|',
  ];
  for (const [i, rep] of data.reps.entries()) {
    const c = data.commands?.[i];
    const pair = (a: number[] | undefined, b: number[] | undefined) =>
      a && b ? `${fmt(mean(a))} / ${fmt(mean(b))}` : '–';
    rows.push(
      `| ${i + 1} (${i % 2 === 0 ? 'host' : 'image'}) | ${fmt(rep.image)} / ${fmt(rep.host)} | ${pair(c?.image.loop.wallSeconds, c?.host.loop.wallSeconds)} | ${pair(c?.image.importRay.wallSeconds, c?.host.importRay.wallSeconds)} |`,
    );
  }
  const tool = data.hyperfine ? ` Whole commands: ${data.hyperfine}, each arm's runs per repetition averaged.` : '';
  return `${rows.join('\n')}\n\nPython ${data.versions.image} in the image, ${data.versions.host} in the host venv.${tool}`;
}
