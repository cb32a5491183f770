/**
 * Whether a process with this PID exists. Crash-only stores and PID files use it to tell a live owner from one
 * that was killed: a dead owner's claim is taken over. EPERM means the process exists but belongs to someone else.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
