import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Follows Ray's own log files on this node and keeps the recent error lines (bounded), so a person can see why
 * Ray is unhappy without opening a shell in the container. Polled, because Ray creates files as it goes.
 */
// Ray's C++ components log `[2024-05-01 10:00:00,123 E 1234 5678] ...` (level letter, pid, thread id).
const ERROR_LINE =
  /(\bERROR\b|,\d{3} [EC] \d+ \d+\]|\] E\d{4}|^E\d{4}|Traceback \(most recent call last\)|\bFATAL\b|Check failed)/;
const WATCHED =
  /^(raylet\.(out|err)|python-core-worker-.*\.log|worker-.*\.err|runtime_env_agent\.err|dashboard_agent\.err|log_monitor\.err)$/;
const MAX_READ = 256 * 1024;
/** Known, harmless complaints of a minimal Ray install (no dashboard, so no metrics exporter). */
const BENIGN = /metrics exporter agent|Failed to connect to the metrics agent|opentelemetry|MetricsAgent/i;

export class RayLogWatcher {
  private readonly offsets = new Map<string, { ino: number; offset: number }>();
  private primed = false;

  constructor(
    private readonly logDir: string,
    private readonly onError: (line: string) => void,
  ) {}

  /**
   * Reads what was appended since the last poll. Files already there at the first poll (before this agent starts
   * Ray) are an earlier run's history and are skipped; files that appear later, or are replaced or truncated (a
   * new session), are read from their start.
   */
  poll(): void {
    const skipExisting = !this.primed;
    this.primed = true;
    if (!existsSync(this.logDir)) return;
    let names: string[];
    try {
      names = readdirSync(this.logDir).filter((name) => WATCHED.test(name));
    } catch {
      return;
    }
    for (const name of names) this.readNew(join(this.logDir, name), skipExisting);
  }

  private readNew(path: string, skipExisting: boolean): void {
    let size: number;
    let ino: number;
    try {
      ({ size, ino } = statSync(path));
    } catch {
      return;
    }
    const known = this.offsets.get(path);
    const from = skipExisting
      ? size
      : known === undefined || known.ino !== ino || known.offset > size
        ? 0
        : known.offset;
    this.offsets.set(path, { ino, offset: size });
    if (size <= from) return;
    const start = Math.max(from, size - MAX_READ);
    const buffer = Buffer.alloc(size - start);
    let fd: number | undefined;
    try {
      fd = openSync(path, 'r');
      readSync(fd, buffer, 0, buffer.length, start);
    } catch {
      return;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    for (const line of buffer.toString('utf8').split('\n')) {
      if (ERROR_LINE.test(line) && !BENIGN.test(line)) this.onError(line.trim().slice(0, 400));
    }
  }
}
