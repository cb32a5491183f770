import { join } from 'node:path';
import type { SuiteContext } from '../../lib/suite.js';
import { docker, log } from '../../lib/util.js';
import { importRaySeconds, largePaths, layersOf } from './measure.js';
import type { ImageData, ImageSettings } from './schema.js';

/** Measures the image pinned by ID: sizes from the engine and from `docker save`, paths with du, `import ray`. */
export async function runImage(context: SuiteContext, settings: ImageSettings): Promise<ImageData> {
  const sizeBytes = Number(await docker('image', 'inspect', '-f', '{{.Size}}', context.imageId));
  log(`image: compressing the layers of ${context.image}`);
  const { layers, diffIds } = await layersOf(context.imageId, join(context.tmp, 'image-save'));
  log('image: largest paths');
  const paths = await largePaths(context.imageId);
  log(`image: import ray x ${settings.importRuns}`);
  const seconds = await importRaySeconds(context.imageId, settings.importRuns);
  return {
    image: context.image,
    imageId: context.imageId,
    sizeBytes,
    layers,
    diffIds,
    paths,
    importRaySeconds: seconds,
  };
}
