import type { PullProgress } from '@ray-agent/protocol';

/** One JSON line of Docker's image pull stream. */
export interface PullEvent {
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { code?: number; message?: string };
}

interface Layer {
  current: number;
  total: number;
}

// Statuses that describe one layer. Others ("Pulling from x" with the tag as id, "Digest:", "Status:") do not.
const LAYER_STATUS =
  /^(Pulling fs layer|Waiting|Downloading|Verifying Checksum|Download complete|Extracting|Pull complete|Already exists|Retrying in)/;
const LAYER_DONE = /^(Download complete|Extracting|Pull complete|Already exists)/;

/** Sums per-layer download progress into one figure. Bytes only grow: a retried layer keeps its best figure. */
export class PullAggregator {
  private readonly layers = new Map<string, Layer>();
  private failure: string | null = null;

  constructor(readonly image: string) {}

  add(event: PullEvent): void {
    // docker-modem's followProgress passes error lines along as ordinary progress: they must fail the pull.
    const error = event.error ?? event.errorDetail?.message;
    if (typeof error === 'string' && error !== '') {
      this.failure ??= error;
      return;
    }
    const status = event.status ?? '';
    if (event.id === undefined || !LAYER_STATUS.test(status)) return;
    let layer = this.layers.get(event.id);
    if (layer === undefined) {
      layer = { current: 0, total: 0 };
      this.layers.set(event.id, layer);
    }
    const detail = event.progressDetail;
    const downloading = status.startsWith('Downloading');
    if ((downloading || status.startsWith('Extracting')) && detail !== undefined) {
      // Extracting counts through the same compressed blob: its total is the layer's size when a fast download
      // sent no Downloading event.
      if (typeof detail.total === 'number' && detail.total > 0) layer.total = Math.max(layer.total, detail.total);
      if (downloading && typeof detail.current === 'number' && detail.current > 0)
        layer.current = Math.max(layer.current, detail.current);
    }
    if (LAYER_DONE.test(status)) {
      // Downloaded, extracting or already here: the whole layer is on the machine.
      layer.total = Math.max(layer.total, layer.current);
      layer.current = layer.total;
    }
  }

  /** The first error the stream reported, or null. */
  get error(): string | null {
    return this.failure;
  }

  snapshot(final: 'running' | 'done' | { error: string } = 'running'): PullProgress {
    let current = 0;
    let total = 0;
    for (const layer of this.layers.values()) {
      // A layer whose size is not known yet adds nothing, so the sum never runs ahead of the total.
      current += Math.min(layer.current, layer.total);
      total += layer.total;
    }
    if (final === 'done') current = total;
    const fraction = final === 'done' ? 1 : total > 0 ? Math.min(1, current / total) : null;
    return {
      image: this.image,
      currentBytes: current,
      totalBytes: total,
      fraction,
      done: final === 'done',
      error: typeof final === 'object' ? final.error : null,
    };
  }
}

export class PullFailedError extends Error {
  constructor(
    message: string,
    /** The progress when it failed, with `error` set. */
    readonly progress: PullProgress,
    readonly statusCode: number | undefined = undefined,
  ) {
    super(message);
    this.name = 'PullFailedError';
  }
}

/**
 * Reads a pull stream to its end, calling onProgress at most every throttleMs (the first and the final "done"
 * always). Resolves with the final progress; rejects with PullFailedError when the stream reported an error (even
 * if it then ended normally) or broke. The failing progress is not sent: the caller decides what to show, since a
 * failed pull may still be fine when the image is on the machine.
 */
export function followPull(
  stream: NodeJS.ReadableStream,
  image: string,
  onProgress: (progress: PullProgress) => void,
  options: { throttleMs?: number } = {},
): Promise<PullProgress> {
  const throttleMs = options.throttleMs ?? 100;
  const aggregator = new PullAggregator(image);
  const throttle = new Throttle(throttleMs, () => onProgress(aggregator.snapshot()));
  let buffer = '';

  const consume = (text: string) => {
    buffer += text;
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line !== '') {
        try {
          aggregator.add(JSON.parse(line) as PullEvent);
        } catch {
          // A line that is not JSON carries no progress; the engine only sends JSON.
        }
      }
      newline = buffer.indexOf('\n');
    }
    throttle.request();
  };

  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (streamError: Error | null) => {
      if (settled) return;
      settled = true;
      consume('\n');
      throttle.cancel();
      const error = aggregator.error ?? streamError?.message ?? null;
      if (error !== null) {
        reject(new PullFailedError(error, aggregator.snapshot({ error }), statusOf(streamError)));
        return;
      }
      const done = aggregator.snapshot('done');
      onProgress(done);
      resolve(done);
    };
    onProgress(aggregator.snapshot());
    throttle.markSent();
    stream.on('data', (chunk: Buffer | string) => consume(chunk.toString()));
    stream.on('error', (error: Error) => finish(error));
    stream.on('end', () => finish(null));
    // A close without an end is a cut connection, not a finished pull.
    stream.on('close', () => finish(new Error('the connection to the Docker Engine closed during the pull')));
  });
}

function statusOf(error: Error | null): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Sends at most once per interval; a request inside the interval is sent when it ends (trailing edge). */
class Throttle {
  private last = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly send: () => void,
  ) {}

  markSent(): void {
    this.last = Date.now();
  }

  request(): void {
    if (this.timer !== undefined) return;
    const wait = this.last + this.intervalMs - Date.now();
    if (wait <= 0) {
      this.last = Date.now();
      this.send();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.last = Date.now();
      this.send();
    }, wait);
  }

  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
