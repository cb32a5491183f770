import type { PolicySignals } from '@ray-agent/protocol';
import si from 'systeminformation';

/** The local weekday (0 = Sunday) and hour of an instant, in this machine's time zone: what the schedule grid means. */
export function localTime(nowMs: number): { weekday: number; hour: number } {
  const date = new Date(nowMs);
  return { weekday: date.getDay(), hour: date.getHours() };
}

/** The parts of `si.battery()` the policy reads. */
export type BatteryReading = Pick<
  si.Systeminformation.BatteryData,
  'hasBattery' | 'isCharging' | 'acConnected' | 'percent'
>;

/**
 * A battery reading as the policy's power signals. No battery (a desktop, a server): on mains, level unknown, so
 * the battery floor does not apply. A battery that charges or has AC connected is on mains.
 */
export function batterySignals(reading: BatteryReading): Pick<PolicySignals, 'onBattery' | 'batteryPercent'> {
  if (!reading.hasBattery) return { onBattery: false, batteryPercent: null };
  const percent =
    typeof reading.percent === 'number' && Number.isFinite(reading.percent) && reading.percent >= 0
      ? Math.min(100, reading.percent)
      : null;
  return { onBattery: !(reading.acConnected || reading.isCharging), batteryPercent: percent };
}

export interface HeadlessSignalDeps {
  battery?: () => Promise<BatteryReading>;
  now?: () => number;
}

/**
 * Signals for a machine without a desktop (`ray-agent run`): the clock and the battery where the OS reports one.
 * There is no input to watch (idle time unknown) and no sleep or shutdown announcement (SIGTERM from the service
 * manager drains the agent through the container's own stop). A battery that cannot be read counts as unknown.
 */
export function headlessSignals(deps: HeadlessSignalDeps = {}): () => Promise<PolicySignals> {
  const battery = deps.battery ?? (() => si.battery());
  const now = deps.now ?? Date.now;
  return async () => {
    const power = await battery().then(batterySignals, () => ({ onBattery: null, batteryPercent: null }));
    const nowMs = now();
    return { nowMs, ...localTime(nowMs), idleSeconds: null, ...power, goingAway: null };
  };
}
