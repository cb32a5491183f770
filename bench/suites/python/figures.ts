import type { Figure } from '../../lib/figure.js';
import { mean } from '../../lib/stats.js';
import type { PythonData } from './schema.js';

const SECTION = 'Python interpreter (context)';

/** The image's Python against the host venv's, per repetition; context for the nodes' compute figures. */
export function pythonFigures(data: PythonData): Figure[] {
  const image = `image's Python ${data.versions.image}`;
  const host = `host venv's Python ${data.versions.host}`;
  const figures: Figure[] = [
    {
      id: 'python.loop.cpu',
      section: SECTION,
      label: `The CPU-bound task's loop (${data.loops.toLocaleString('en')} iterations) outside Ray, CPU s`,
      unit: 's',
      subject: { label: image, samples: data.reps.map((r) => r.image) },
      baseline: { label: host, samples: data.reps.map((r) => r.host) },
      goal: { kind: 'none' },
    },
  ];
  const commands = data.commands ?? [];
  if (commands.length) {
    figures.push(
      {
        id: 'python.command.loop',
        section: SECTION,
        label: 'The same loop as a whole command (interpreter start included), wall s (hyperfine)',
        unit: 's',
        subject: { label: image, samples: commands.map((c) => mean(c.image.loop.wallSeconds)) },
        baseline: { label: host, samples: commands.map((c) => mean(c.host.loop.wallSeconds)) },
        goal: { kind: 'none' },
      },
      {
        id: 'python.command.import-ray',
        section: SECTION,
        label: '`python3 -c "import ray"`, wall s (hyperfine)',
        unit: 's',
        subject: {
          label: `${image}, the image's Ray`,
          samples: commands.map((c) => mean(c.image.importRay.wallSeconds)),
        },
        baseline: {
          label: `${host}, the venv's Ray`,
          samples: commands.map((c) => mean(c.host.importRay.wallSeconds)),
        },
        goal: { kind: 'none' },
      },
    );
  }
  return figures;
}
