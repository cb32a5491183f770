import type { OfferableLimits, PullProgress, StatusView, ViewPhase } from '@ray-agent/protocol';

/** Pure formatting for the window; no DOM, so it is unit-tested directly. */

const KiB = 1024;
const MiB = KiB * 1024;
const GiB = MiB * 1024;

export function formatBytes(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(1)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  if (bytes >= KiB) return `${(bytes / KiB).toFixed(1)} KiB`;
  return `${Math.round(bytes)} B`;
}

export function formatCpus(cpus: number): string {
  const shown = Number.isInteger(cpus) ? String(cpus) : String(Number(cpus.toFixed(2)));
  return `${shown} ${cpus === 1 ? 'CPU' : 'CPUs'}`;
}

export function formatMiB(mib: number): string {
  return mib >= 1024 ? `${(mib / 1024).toFixed(1)} GiB` : `${mib} MiB`;
}

/** Local wall-clock time, hours and minutes. */
export function formatClock(iso: string): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return `${String(at.getHours()).padStart(2, '0')}:${String(at.getMinutes()).padStart(2, '0')}`;
}

/** Phases where something needs the person's attention (the tray shows its attention icon). */
const ATTENTION: ReadonlySet<ViewPhase> = new Set([
  'docker-missing',
  'docker-stopped',
  'docker-denied',
  'unreachable',
  'crash-looping',
  'outdated',
  'error',
]);
export function needsAttention(phase: ViewPhase): boolean {
  return ATTENTION.has(phase);
}

/** Mid-stop or mid-pull the toggle would race the operation in flight (the tray disables it too). */
export function toggleLocked(phase: ViewPhase): boolean {
  return phase === 'stopping' || phase === 'pulling';
}

export function registrationText(registration: StatusView['registration']): string {
  switch (registration.state) {
    case 'registered':
      return 'Registered';
    case 'registering':
      return 'Registering…';
    case 'rejected':
      return 'Rejected: the manager refused the enrollment token';
    case 'needs_reregistration':
      return 'Needs re-registration: enter a new enrollment token in Settings';
    default:
      return 'Not registered';
  }
}

export function heartbeatText(heartbeat: StatusView['heartbeat']): string {
  if (heartbeat.healthy) {
    return heartbeat.lastSuccessAt ? `Healthy (last at ${formatClock(heartbeat.lastSuccessAt)})` : 'Healthy';
  }
  if (heartbeat.failingSince) {
    const failures = heartbeat.consecutiveFailures;
    return `Failing since ${formatClock(heartbeat.failingSince)} (${failures} ${failures === 1 ? 'failure' : 'failures'} in a row)`;
  }
  return 'No heartbeat yet';
}

/** The container's CPUs, and what Ray makes of them when it schedules fewer (it counts whole CPUs). */
export function cpuLimitText(limits: { cpus: number; rayCpus?: number | undefined }): string {
  return limits.rayCpus !== undefined && limits.rayCpus < limits.cpus
    ? `Ray uses ${limits.rayCpus} of ${formatCpus(limits.cpus)}`
    : formatCpus(limits.cpus);
}

export function limitsText(limits: StatusView['limits']): string {
  return limits
    ? `${cpuLimitText(limits)}, ${formatBytes(limits.memoryBytes)} memory`
    : 'None yet (the agent is not running)';
}

export function offerableText(limits: OfferableLimits): string {
  const host = `this computer has ${formatCpus(limits.host.cpus)} / ${formatBytes(limits.host.memoryBytes)}`;
  if (!limits.docker) return `Docker is not reachable, so the limits are this computer's: ${host}`;
  return `Docker can use ${formatCpus(limits.docker.cpus)} / ${formatBytes(limits.docker.memoryBytes)}; ${host}`;
}

/**
 * What can be offered: Docker's figures when Docker answers (a VM may hold less than the host), else the host's.
 * Whole CPUs, as Ray schedules them (and the settings accept).
 */
export function sliderBounds(limits: OfferableLimits): { maxCpus: number; maxMemoryMiB: number } {
  const source = limits.docker ?? limits.host;
  const maxCpus = Math.max(1, Math.floor(source.cpus));
  const maxMemoryMiB = Math.max(1024, Math.floor(source.memoryBytes / MiB / 256) * 256);
  return { maxCpus, maxMemoryMiB };
}

export function pullText(progress: PullProgress): string {
  if (progress.error) return 'Download failed';
  if (progress.done) return `Downloaded ${progress.image}`;
  if (progress.fraction === null) return 'Waiting for the image size…';
  return `${Math.floor(progress.fraction * 100)}% · ${formatBytes(progress.currentBytes)} of ${formatBytes(progress.totalBytes)}`;
}

/** Inline messages read as sentences: "Must be …". */
export function sentence(message: string): string {
  return message ? message.charAt(0).toUpperCase() + message.slice(1) : message;
}

/**
 * Whether the person's stops make sense now: the tray's rule (controller/src/app/tray-menu.ts stopActions), for
 * the window's own buttons on desktops without a tray.
 */
export function stopAllowed(view: StatusView): { afterCurrent: boolean; now: boolean } {
  const mode = view.policy?.mode;
  const running = mode ? mode === 'contributing' || mode === 'stepping-aside' : view.phase === 'contributing';
  const draining = mode ? mode === 'draining' : view.phase === 'draining';
  return { afterCurrent: running, now: running || draining };
}

/** "Contributing to ray-head.lan:10001 via manager.lan:8443", from the addresses as configured. */
export function clusterText(cluster: StatusView['cluster'], contributing: boolean): string {
  if (!cluster) return 'No cluster is set up.';
  const head = cluster.address.replace(/^ray:\/\//, '').replace(/\/$/, '');
  let manager = cluster.managerUrl;
  try {
    manager = new URL(cluster.managerUrl).host;
  } catch {
    // Shown as configured.
  }
  return `${contributing ? 'Contributing to' : 'Set up for'} ${head} via ${manager}`;
}
