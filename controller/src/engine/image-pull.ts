import type { PullProgress } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { followPull, PullAggregator, PullFailedError } from './pull-progress.js';

export type PullPolicy = 'missing' | 'always';

export interface EnsureImageResult {
  image: string;
  /** local: it was here and no pull was asked for; pulled; local-after-failed-pull: see warning. */
  source: 'local' | 'pulled' | 'local-after-failed-pull';
  warning: string | null;
}

export class ImageUnavailableError extends Error {
  constructor(
    message: string,
    readonly image: string,
  ) {
    super(message);
    this.name = 'ImageUnavailableError';
  }
}

/**
 * Makes sure `image` is on the engine. A failed pull is not fatal when a local copy exists (offline laptop,
 * registry down): the agent starts with that copy and the result carries a warning.
 */
export async function ensureImage(
  docker: Dockerode,
  image: string,
  onProgress: (progress: PullProgress) => void,
  options: { pull?: PullPolicy; throttleMs?: number } = {},
): Promise<EnsureImageResult> {
  const policy = options.pull ?? 'missing';
  const local = await hasImage(docker, image);
  if (local && policy === 'missing') {
    onProgress(new PullAggregator(image).snapshot('done'));
    return { image, source: 'local', warning: null };
  }
  try {
    const stream = (await docker.pull(image)) as NodeJS.ReadableStream;
    await followPull(stream, image, onProgress, { throttleMs: options.throttleMs });
    return { image, source: 'pulled', warning: null };
  } catch (error) {
    const reason = describePullFailure(image, error);
    if (await hasImage(docker, image)) {
      onProgress(new PullAggregator(image).snapshot('done'));
      return {
        image,
        source: 'local-after-failed-pull',
        warning: `could not pull ${image} (${reason}); using the copy already on this computer`,
      };
    }
    const progress = error instanceof PullFailedError ? error.progress : new PullAggregator(image).snapshot();
    onProgress({ ...progress, done: false, error: reason });
    throw new ImageUnavailableError(reason, image);
  }
}

export async function hasImage(docker: Dockerode, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return false;
    throw error;
  }
}

/** One sentence for a failed pull; not-found and denied are one case, since registries hide which it is. */
export function describePullFailure(image: string, error: unknown): string {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  const raw = dockerMessage(error);
  const notFound =
    status === 401 ||
    status === 403 ||
    status === 404 ||
    /manifest unknown|not found|pull access denied|access to the resource is denied|unauthorized|denied/i.test(raw);
  if (notFound) return `the image ${image} was not found or access was denied (${raw})`;
  return `could not pull ${image}: ${raw}`;
}

function dockerMessage(error: unknown): string {
  const json = (error as { json?: { message?: unknown } | null } | null)?.json;
  if (typeof json?.message === 'string') return json.message.trim();
  const message = error instanceof Error ? error.message : String(error);
  // docker-modem prefixes "(HTTP code 404) unexpected - "; the engine's own words are more useful.
  return message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}
