import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Write-temp, fsync, rename, fsync-directory: after a crash at any point the file holds the old or the new
 * content, never a truncated mix (the directory fsync is what makes the rename itself durable). Shared by the agent
 * and the tunnel container, which write files for each other on their volumes, and by the controller's stores.
 */
export function writeFileAtomic(path: string, content: string, mode = 0o600): void {
  const temp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(temp, 'w', mode);
    try {
      // The process's umask must not narrow (or, for a 0644 file another user reads, break) the mode asked for.
      fchmodSync(fd, mode);
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  // Windows cannot open a directory for fsync (the tray app's files); its rename is durable enough there.
  if (process.platform === 'win32') return;
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
