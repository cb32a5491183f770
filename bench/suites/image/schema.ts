import { z } from 'zod';

/** The raw data of one image run (bench/results/image.json `data`): everything figuresOf and details read. */

const bytes = z.number().int().nonnegative();

/** One file-system layer, bottom to top, as `docker save` writes it and a registry stores it. */
export const Layer = z.object({
  /** The Dockerfile step that made it (the base image's own layer has none). */
  createdBy: z.string(),
  /** The layer's tar stream: what a pull unpacks. */
  tarBytes: bytes,
  /** That stream gzip-compressed (level 6, as `docker push` compresses): what a pull transfers. */
  gzipBytes: bytes,
});
export type Layer = z.infer<typeof Layer>;

export const ImageData = z.object({
  image: z.string().min(1),
  imageId: z.string().min(1),
  /** `docker image inspect .Size`: the unpacked size the engine reports. */
  sizeBytes: bytes,
  layers: z.array(Layer).min(1),
  /** How many layers the image's config lists (rootfs.diff_ids): every one of them must be in `layers`. */
  diffIds: z.number().int().positive(),
  /**
   * Every file and folder of the image's root of at least 1 MiB (`du -x -a` as root): a folder's size is all it
   * holds, each inode counted once in the walk (a hard link is not counted twice), so nested paths keep their size.
   */
  paths: z.array(z.object({ path: z.string().min(1), bytes })),
  /** `python3 -c 'import ray'` inside the image (hyperfine, one value per run, s), as uid 1000 on a read-only root. */
  importRaySeconds: z.array(z.number().finite().positive()),
});
export type ImageData = z.infer<typeof ImageData>;

export interface ImageSettings {
  /** Timed runs of `import ray` (after 2 warm-up runs). */
  importRuns: number;
}
