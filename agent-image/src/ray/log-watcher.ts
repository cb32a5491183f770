import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Follows Ray's own log files on this node and keeps the recent error lines (bounded), so a person can see why
 * Ray is unhappy without opening a shell in the container. Polled, because Ray creates files as it goes.
 */
const ERROR_LINE = /(\bERROR\b|\] E\d{4}|^E\d{4}|Traceback \(most recent call last\)|\bFATAL\b|Check failed)/;
const WATCHED = /^(raylet\.(out|err)|python-core-worker-.*\.log|worker-.*\.err|runtime_env_agent\.err|dashboard_agent\.err|log_monitor\.err)$/;
const MAX_READ = 256 * 1024;
/** Known, harmless complaints of a minimal Ray install (no dashboard, so no metrics exporter). */
const BENIGN = /metrics exporter agent|Failed to connect to the metrics agent|opentelemetry|MetricsAgent/i;

export class RayLogWatcher {
  private readonly offsets = new Map<string, number>();

  constructor(
    private readonly logDir: string,
    private readonly onError: (line: string) => void,
  ) {}

  /** Reads what was appended since the last poll. New files are read from their end to skip old sessions. */
  poll(): void {
    if (!existsSync(this.logDir)) return;
    let names: string[];
    try {
      names = readdirSync(this.logDir).filter((name) => WATCHED.test(name));
    } catch {
      return;
    }
    for (const name of names) this.readNew(join(this.logDir, name));
  }

  private readNew(path: string): void {
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      return;
    }
    const known = this.offsets.get(path);
    const from = known === undefined || known > size ? 0 : known;
    this.offsets.set(path, size);
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
