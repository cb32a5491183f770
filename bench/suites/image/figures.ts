import type { Figure } from '../../lib/figure.js';
import type { ImageData } from './schema.js';

const MB = 1e6;
const SECTION = 'Image size and start';
const SUBJECT = 'agent image';

/** What no worker image can shed: Ray's node binaries and the Node.js binary the agent runs on (as shipped). */
const FLOOR_PATHS = [/\/ray\/_raylet\.so$/, /\/ray\/core\/src\/ray\/raylet\/raylet$/, /^\/usr\/local\/bin\/node$/];

function floorBytes(data: ImageData): number | null {
  const found = FLOOR_PATHS.map((pattern) => data.paths.find((entry) => pattern.test(entry.path)));
  return found.every((entry) => entry !== undefined)
    ? found.reduce((sum, entry) => sum + (entry?.bytes ?? 0), 0)
    : null;
}

export function figuresOf(data: ImageData): Figure[] {
  const floor = floorBytes(data);
  const compressed = data.layers.reduce((sum, layer) => sum + layer.gzipBytes, 0);
  return [
    {
      id: 'image.size.uncompressed',
      section: SECTION,
      label: 'Image, uncompressed (`docker image inspect` Size)',
      unit: 'MB',
      subject: { label: SUBJECT, samples: [data.sizeBytes / MB] },
      baseline: null,
      goal: { kind: 'at-most', value: 300 },
      exact: true,
      checks: [],
      ...(floor === null
        ? {}
        : { floor: { label: 'raylet + _raylet.so + node binaries (a worker needs all three)', value: floor / MB } }),
    },
    {
      id: 'image.size.compressed',
      section: SECTION,
      label: 'Image, compressed (what a pull transfers: each layer gzip-compressed)',
      unit: 'MB',
      subject: { label: SUBJECT, samples: [compressed / MB] },
      baseline: null,
      goal: { kind: 'at-most', value: 120 },
      exact: true,
      checks: [
        {
          what: `every layer of the image was measured (${data.layers.length} of ${data.diffIds})`,
          ok: data.layers.length === data.diffIds,
        },
      ],
    },
    {
      id: 'image.start.import-ray',
      section: SECTION,
      label: "`python3 -c 'import ray'` in the image (uid 1000, read-only root)",
      unit: 's',
      subject: { label: SUBJECT, samples: data.importRaySeconds },
      baseline: null,
      goal: { kind: 'none' },
      exact: false,
      checks: [],
    },
  ];
}
