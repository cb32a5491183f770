import type { ContributionPolicy } from '@ray-agent/protocol';
import { byTestId, setText, show } from './dom.js';
import { sentence } from './format.js';
import { HourGrid } from './hour-grid.js';

/**
 * The "When to contribute" part of the settings form. The main process checks the values with the protocol's
 * schema; its message for the policy names the field ("idle minutes must be 1-240 minutes, e.g. 5"), which puts
 * the message under that field's input.
 */
const NUMBERS = ['idle', 'minBattery', 'throttle', 'grace', 'drainSeconds'] as const;
type NumberField = (typeof NUMBERS)[number];

/** The field names the schema's messages start with (protocol/src/policy.ts), mapped to their inputs. */
const MESSAGE_FIELDS: ReadonlyArray<[string, NumberField]> = [
  ['idle minutes', 'idle'],
  ['battery floor', 'minBattery'],
  ['throttle', 'throttle'],
  ['grace period', 'grace'],
  ['drain deadline', 'drainSeconds'],
];

const box = (id: string) => byTestId<HTMLInputElement>(`input-policy-${id}`);

export class PolicyForm {
  readonly #grid: HourGrid;
  #saved: ContributionPolicy | null = null;

  constructor() {
    this.#grid = new HourGrid(byTestId('schedule-grid'), () => this.#renderSummary());
    for (const id of ['idleEnabled', 'scheduleEnabled', 'pauseOnBattery']) {
      box(id).addEventListener('change', () => this.#renderSummary());
    }
    box('idle').addEventListener('input', () => this.#renderSummary());
  }

  fill(policy: ContributionPolicy): void {
    this.#saved = policy;
    box('idleEnabled').checked = policy.idle.enabled;
    box('idle').value = String(policy.idle.minutes);
    box('scheduleEnabled').checked = policy.schedule.enabled;
    this.#grid.set(policy.schedule.hours);
    box('pauseOnBattery').checked = policy.battery.pauseOnBattery;
    box('minBattery').value = String(policy.battery.minPercent);
    box('throttle').value = String(policy.throttlePercent);
    box('grace').value = String(policy.graceMinutes);
    box('drainSeconds').value = String(policy.goingAwayDrainSeconds);
    this.#renderSummary();
  }

  /** The form's policy; an empty number is NaN, which the schema refuses with the field's message. */
  read(): ContributionPolicy {
    const number = (field: NumberField) => {
      const text = box(field).value.trim();
      return text === '' ? Number.NaN : Number(text);
    };
    return {
      idle: { enabled: box('idleEnabled').checked, minutes: number('idle') },
      schedule: { enabled: box('scheduleEnabled').checked, hours: this.#grid.get() },
      battery: { pauseOnBattery: box('pauseOnBattery').checked, minPercent: number('minBattery') },
      throttlePercent: number('throttle'),
      graceMinutes: number('grace'),
      goingAwayDrainSeconds: number('drainSeconds'),
    };
  }

  clearErrors(): void {
    for (const field of NUMBERS) this.#error(field, null);
    setText('error-policy', '');
    show('error-policy', false);
  }

  /** Shows the schema's message under its field (or under the section); returns the element to focus. */
  showError(message: string): HTMLElement {
    const field = MESSAGE_FIELDS.find(([prefix]) => message.startsWith(prefix))?.[1];
    if (field) {
      this.#error(field, message);
      return box(field);
    }
    setText('error-policy', sentence(message));
    show('error-policy', true);
    return box('idleEnabled');
  }

  get saved(): ContributionPolicy | null {
    return this.#saved;
  }

  #error(field: NumberField, message: string | null): void {
    setText(`error-policy-${field}`, message ? sentence(message) : '');
    show(`error-policy-${field}`, message !== null);
    if (message) box(field).setAttribute('aria-invalid', 'true');
    else box(field).removeAttribute('aria-invalid');
  }

  /** One line saying what the choices add up to, so "neither box ticked" reads as "always". */
  #renderSummary(): void {
    const idle = box('idleEnabled').checked;
    const schedule = box('scheduleEnabled').checked;
    const parts: string[] = [];
    if (idle) parts.push(`after ${box('idle').value || '?'} minutes without input`);
    if (schedule) parts.push('in the marked hours');
    const when =
      parts.length === 0 ? 'Contributes whenever contributing is on' : `Contributes only ${parts.join(' and ')}`;
    const battery = box('pauseOnBattery').checked ? ', never on battery.' : '.';
    setText('policy-summary', `${when}${battery}`);
    this.#grid.setDisabled(!schedule);
  }
}
