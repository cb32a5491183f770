import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { processAlive } from '../app/process-alive.js';

/**
 * `ray-agent run` claims the settings folder with a PID file, so a second one does not fight it over the container
 * and `config set` can say who applies a change. Crash-only: a file left by a killed run names a dead process and
 * is taken over.
 */
export const RUN_PID_FILE = 'ray-agent-run.pid';

/** The PID of a live `ray-agent run` on this settings folder, or null. */
export function runningRunPid(settingsDir: string): number | null {
  let text: string;
  try {
    text = readFileSync(path.join(settingsDir, RUN_PID_FILE), 'utf8');
  } catch {
    return null;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid) ? pid : null;
}

/** Claims the folder for this process; returns the release, or the PID of the live run that holds it. */
export function claimRunPid(settingsDir: string): { release: () => void } | { heldBy: number } {
  const file = path.join(settingsDir, RUN_PID_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      // 'wx': of two runs starting at once, exactly one creates the file.
      const fd = openSync(file, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return { release: () => rmSync(file, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = runningRunPid(settingsDir);
      if (holder !== null) return { heldBy: holder };
      rmSync(file, { force: true }); // a dead run's file
    }
  }
  const holder = runningRunPid(settingsDir);
  return { heldBy: holder ?? 0 };
}
