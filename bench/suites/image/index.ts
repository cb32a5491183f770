import type { Suite } from '../../lib/suite.js';
import { details } from './details.js';
import { figuresOf } from './figures.js';
import { runImage } from './run.js';
import { ImageData, type ImageSettings } from './schema.js';

/** The agent image: its size unpacked and as a pull transfers it, where the bytes are, and how fast Ray imports. */
export const suite: Suite<ImageSettings, ImageData> = {
  name: 'image',
  // Needs no network: every container it runs has --network=none.
  inner: true,
  profiles: { full: { importRuns: 20 }, quick: { importRuns: 10 }, smoke: { importRuns: 3 } },
  data: ImageData,
  run: runImage,
  figuresOf,
  details,
};
