import type { PullProgress } from '@ray-agent/protocol';
import type Dockerode from 'dockerode';
import { describePullFailure } from '../engine/image-pull.js';
import { followPull } from '../engine/pull-progress.js';

/**
 * The tag the image an update replaces is kept under (`<repository>:ray-agent-previous`) until the new one proved
 * itself: a tag, not just the image ID, so `docker image prune` cannot take the way back while the old container is
 * gone and the new one is on probation. Local only: never pushed.
 */
export const PREVIOUS_TAG = 'ray-agent-previous';

/** How long the registry (through the engine) may take to say what the tag points at. */
const CHECK_TIMEOUT_MS = 60_000;

export interface ImageRef {
  /** Everything before the tag or digest: `127.0.0.1:5000/ray-agent`, `ray-agent`. */
  repository: string;
  tag: string | null;
  digest: string | null;
}

/** Splits a Docker image reference; a colon before the last slash is a registry's port, not a tag. */
export function parseImageRef(image: string): ImageRef {
  const at = image.indexOf('@');
  const digest = at >= 0 ? image.slice(at + 1) : null;
  const named = at >= 0 ? image.slice(0, at) : image;
  const colon = named.lastIndexOf(':');
  const tagged = colon > named.lastIndexOf('/');
  return {
    repository: tagged ? named.slice(0, colon) : named,
    tag: tagged ? named.slice(colon + 1) : null,
    digest,
  };
}

/** Where the image an update replaces is kept: `<repository>:ray-agent-previous`. */
export function previousRef(image: string): string {
  return `${parseImageRef(image).repository}:${PREVIOUS_TAG}`;
}

/** `docker.io/library/x` and `x` are one repository; the engine reports RepoDigests in the short form. */
function familiar(repository: string): string {
  return repository.replace(/^(docker\.io|index\.docker\.io)\//, '').replace(/^library\//, '');
}

export interface LocalImage {
  id: string;
  /** The manifest digests this image was pulled or pushed by, for this repository only. */
  digests: string[];
}

/** The image the reference names on this engine, with its registry digests of that repository; null: not here. */
export async function localImage(docker: Dockerode, image: string): Promise<LocalImage | null> {
  let inspect: Dockerode.ImageInspectInfo;
  try {
    inspect = await docker.getImage(image).inspect();
  } catch (error) {
    if (statusOf(error) === 404) return null;
    throw error;
  }
  const repository = familiar(parseImageRef(image).repository);
  const digests = (inspect.RepoDigests ?? [])
    .map((entry) => parseImageRef(entry))
    .filter((ref) => ref.digest !== null && familiar(ref.repository) === repository)
    .map((ref) => ref.digest as string);
  return { id: inspect.Id, digests };
}

/**
 * The manifest digest the registry serves for `image` now, asked through the Engine (GET /distribution/{name}/json:
 * it uses the engine's own registry configuration and credentials, and downloads nothing).
 */
export async function remoteDigest(docker: Dockerode, image: string, timeoutMs = CHECK_TIMEOUT_MS): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the registry did not answer within ${Math.round(timeoutMs / 1000)} s`)),
      timeoutMs,
    );
  });
  try {
    const answer = (await Promise.race([docker.getImage(image).distribution(), timeout])) as {
      Descriptor?: { digest?: unknown };
    };
    const digest = answer.Descriptor?.digest;
    if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest))
      throw new Error(`the engine's answer carries no manifest digest (${JSON.stringify(answer).slice(0, 200)})`);
    return digest;
  } finally {
    clearTimeout(timer);
  }
}

export type UpdateCheck =
  | {
      kind: 'newer';
      image: string;
      /** The registry's manifest digest for the tag. */
      digest: string;
      /** `<repository>@<digest>`: pulled by digest, so the configured tag does not move before the switch. */
      pullRef: string;
      /** The image the tag names on this engine now (what a switch replaces). */
      currentId: string;
      sentence: string;
    }
  | { kind: 'current' | 'local' | 'pinned' | 'absent' | 'unreachable'; image: string; sentence: string }
  /** The registry's newest is one that was switched to and rolled back: never again. */
  | { kind: 'rejected'; image: string; digest: string; sentence: string };

/**
 * Whether the registry has another image under the configured tag than this engine runs. A tag that was never
 * pulled or pushed (ray-agent:dev, built here) has no registry to ask: "local", with no network call and no error.
 */
export async function newerImageAvailable(
  docker: Dockerode,
  image: string,
  options: { rejected?: readonly string[]; timeoutMs?: number } = {},
): Promise<UpdateCheck> {
  const ref = parseImageRef(image);
  if (ref.digest !== null)
    return { kind: 'pinned', image, sentence: `no updates: ${image} names one image by its digest` };
  const local = await localImage(docker, image);
  if (local === null) return { kind: 'absent', image, sentence: `no updates: ${image} is not on this computer yet` };
  if (local.digests.length === 0) return { kind: 'local', image, sentence: 'no updates: the image is local' };
  let digest: string;
  try {
    digest = await remoteDigest(docker, image, options.timeoutMs);
  } catch (error) {
    return {
      kind: 'unreachable',
      image,
      sentence: `could not check for a newer ${image}: ${describePullFailure(image, error)}`,
    };
  }
  if (local.digests.includes(digest)) return { kind: 'current', image, sentence: `${image} is up to date` };
  if (options.rejected?.includes(digest))
    return {
      kind: 'rejected',
      image,
      digest,
      sentence: `the newest ${image} (${shortDigest(digest)}) did not work here before; waiting for a newer one`,
    };
  return {
    kind: 'newer',
    image,
    digest,
    pullRef: `${ref.repository}@${digest}`,
    currentId: local.id,
    sentence: `a newer ${image} (${shortDigest(digest)}) is available`,
  };
}

/**
 * Pulls `pullRef` (a digest reference) with progress, abortable (the engine stops a pull whose client went away).
 * Resolves with the pulled image's ID. Nothing is tagged: the configured tag moves only at the switch.
 */
export async function pullImage(
  docker: Dockerode,
  pullRef: string,
  onProgress: (progress: PullProgress) => void,
  options: { signal?: AbortSignal; throttleMs?: number } = {},
): Promise<string> {
  try {
    const stream = (await docker.pull(pullRef, options.signal ? { abortSignal: options.signal } : {})) as
      | NodeJS.ReadableStream
      | undefined;
    if (stream === undefined) throw new Error('the engine sent no pull stream');
    await followPull(stream, pullRef, onProgress, { throttleMs: options.throttleMs });
  } catch (error) {
    if (options.signal?.aborted) throw new Error(`the pull of ${pullRef} was stopped`);
    throw new Error(describePullFailure(pullRef, error));
  }
  const pulled = await localImage(docker, pullRef);
  if (pulled === null) throw new Error(`${pullRef} is not on this computer after its pull`);
  return pulled.id;
}

/** Points `ref` (repository:tag) at an image ID; moving an existing tag is fine. */
export async function tagImage(docker: Dockerode, imageId: string, ref: string): Promise<void> {
  const { repository, tag } = parseImageRef(ref);
  await docker.getImage(imageId).tag({ repo: repository, tag: tag ?? 'latest' });
}

/**
 * Removes a reference (a tag, or repository@digest). The image itself goes only when nothing else names or uses
 * it; a missing reference or one still in use is left alone (cleanup is best-effort, never an error).
 */
export async function removeRef(docker: Dockerode, ref: string): Promise<void> {
  try {
    await docker.getImage(ref).remove();
  } catch (error) {
    const status = statusOf(error);
    if (status !== 404 && status !== 409) throw error;
  }
}

export function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}
