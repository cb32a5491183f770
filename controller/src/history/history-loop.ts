import type Dockerode from 'dockerode';
import type { HistorySample, HistoryStore } from './history-store.js';

export const HISTORY_SAMPLE_INTERVAL_MS = 15_000;

export interface HistoryLoopOptions {
  store: HistoryStore;
  /** Reads the machine: the container's CPU counter, the agent's task count, the policy's mode. */
  sample: () => Promise<Omit<HistorySample, 'atMs'>>;
  intervalMs?: number;
  now?: () => number;
  /** A failed sample is skipped (the next one counts from the last good one); told here, e.g. to a logger. */
  onError?: (error: unknown) => void;
}

/**
 * One long-running loop that samples every `intervalMs` and records into the store. Samples never overlap: the next
 * waits for the one in flight. stop() waits for it, then flushes, so a clean quit loses nothing.
 */
export class HistoryLoop {
  readonly #options: HistoryLoopOptions;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = true;

  constructor(options: HistoryLoopOptions) {
    this.#options = options;
    this.#intervalMs = options.intervalMs ?? HISTORY_SAMPLE_INTERVAL_MS;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
    this.#options.store.close();
  }

  #tick(): void {
    this.#running = this.#sampleOnce().finally(() => {
      this.#running = null;
      if (this.#stopped) return;
      this.#timer = setTimeout(() => this.#tick(), this.#intervalMs);
      // The loop alone must not keep a CLI process alive.
      this.#timer.unref();
    });
  }

  async #sampleOnce(): Promise<void> {
    try {
      const sample = await this.#options.sample();
      // Timestamped after the read: the counters are as of now, not as of when the read began. A read that ends
      // while stopping still counts: stop() waits for it before the last flush.
      this.#options.store.record({ ...sample, atMs: this.#now() });
    } catch (error) {
      this.#options.onError?.(error);
    }
  }
}

/**
 * The container's cumulative CPU time from one `docker stats` read (stream: false, one-shot: no 1 s wait for a
 * second reading). null when the container does not exist or is not running (no cgroup to read).
 */
export async function containerCpuUsage(
  docker: Dockerode,
  name: string,
): Promise<{ id: string; usageNs: number } | null> {
  let stats: Dockerode.ContainerStats;
  try {
    // one-shot is the Engine's (API 1.41+) way to skip the pre-read; older engines ignore it.
    stats = await docker.getContainer(name).stats({ stream: false, 'one-shot': true });
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return null;
    throw error;
  }
  const usage = stats.cpu_stats?.cpu_usage?.total_usage;
  // A stopped container answers with zeroed stats read at the zero time: no cgroup, nothing to count.
  if (typeof usage !== 'number' || stats.read?.startsWith('0001-')) return null;
  // Engines before API 1.41 leave the id out of stats.
  const id = stats.id ?? (await docker.getContainer(name).inspect()).Id;
  return { id, usageNs: usage };
}
