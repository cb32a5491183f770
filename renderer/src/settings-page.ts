import type {
  OfferableLimits,
  RayAgentApi,
  Settings,
  SettingsErrors,
  SettingsPatch,
  TokenState,
} from '@ray-agent/protocol';
import { byTestId, errorMessage, setText, show } from './dom.js';
import { formatCpus, formatMiB, offerableText, sentence, sliderBounds } from './format.js';
import { PolicyForm } from './policy-form.js';

/** Fields with an inline error slot; `token` is stored apart from the settings (OS keychain). */
const FIELDS = [
  'clusterAddress',
  'managerUrl',
  'token',
  'cpus',
  'memoryMiB',
  'image',
  'startAtLogin',
  'onQuit',
  'statusPort',
  'network',
  'notifications',
  'updates',
  'acceptWork',
  'sandboxNetwork',
] as const;
type Field = (typeof FIELDS)[number];

const input = (field: Field) => byTestId<HTMLInputElement>(`input-${field}`);
/** The fields that are a <select>, not an <input>. */
const SELECTS: ReadonlySet<Field> = new Set(['onQuit', 'network', 'updates', 'acceptWork']);
const control = (field: Field): HTMLElement => (SELECTS.has(field) ? byTestId(`input-${field}`) : input(field));

/**
 * The settings form. Values are checked by the main process (`settings:save` validates the whole with the
 * protocol's schema); its per-field messages are shown inline and the form keeps what the person typed.
 */
export class SettingsPage {
  readonly #api: RayAgentApi;
  readonly #onSaved: (settings: Settings) => void;
  #saved: Settings | null = null;
  readonly #policy = new PolicyForm();
  /** A slider the person did not move keeps the saved value (the range may have clamped or snapped it). */
  #moved = { cpus: false, memoryMiB: false };

  constructor(api: RayAgentApi, onSaved: (settings: Settings) => void) {
    this.#api = api;
    this.#onSaved = onSaved;
    byTestId<HTMLFormElement>('settings-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.#save();
    });
    input('cpus').addEventListener('input', () => {
      this.#moved.cpus = true;
      this.#renderSliderValues();
    });
    input('memoryMiB').addEventListener('input', () => {
      this.#moved.memoryMiB = true;
      this.#renderSliderValues();
    });
  }

  fill(settings: Settings): void {
    this.#saved = settings;
    this.#moved = { cpus: false, memoryMiB: false };
    input('clusterAddress').value = settings.clusterAddress;
    input('managerUrl').value = settings.managerUrl;
    input('cpus').value = String(settings.cpus);
    input('memoryMiB').value = String(settings.memoryMiB);
    input('image').value = settings.image;
    input('startAtLogin').checked = settings.startAtLogin;
    byTestId<HTMLSelectElement>('input-onQuit').value = settings.onQuit;
    input('statusPort').value = String(settings.statusPort);
    byTestId<HTMLSelectElement>('input-network').value = settings.network;
    this.#policy.fill(settings.policy);
    input('notifications').checked = settings.notifications;
    byTestId<HTMLSelectElement>('input-updates').value = settings.updates;
    byTestId<HTMLSelectElement>('input-acceptWork').value = settings.acceptWork;
    input('sandboxNetwork').checked = settings.sandboxNetwork;
    this.#renderSliderValues();
  }

  applyLimits(limits: OfferableLimits): void {
    const { maxCpus, maxMemoryMiB } = sliderBounds(limits);
    input('cpus').max = String(maxCpus);
    input('memoryMiB').max = String(maxMemoryMiB);
    setText('offerable', offerableText(limits));
    setText('cpus-max', formatCpus(maxCpus));
    setText('memory-max', formatMiB(maxMemoryMiB));
    // Re-apply the saved values now that the range is known (a range input clamps to its max).
    if (this.#saved) this.fill(this.#saved);
  }

  limitsUnavailable(error: unknown): void {
    setText('offerable', `The CPU and memory this computer can offer are unknown: ${errorMessage(error)}`);
  }

  showTokenState(state: TokenState): void {
    const token = input('token');
    token.disabled = state.unavailableReason !== null;
    token.placeholder = state.stored
      ? 'A token is stored; paste a new one to replace it'
      : 'Paste the enrollment token';
    const text = state.unavailableReason ?? (state.stored ? 'Stored in the OS keychain' : 'Not stored');
    setText('token-state', text);
    byTestId('token-state').classList.toggle('field-error', state.unavailableReason !== null);
  }

  #renderSliderValues(): void {
    const cpus = Number(input('cpus').value);
    const memory = Number(input('memoryMiB').value);
    setText('cpus-value', formatCpus(cpus));
    setText('memory-value', formatMiB(memory));
    const saved = this.#saved;
    const clamped: string[] = [];
    if (saved && !this.#moved.cpus && saved.cpus > Number(input('cpus').max)) clamped.push(formatCpus(saved.cpus));
    if (saved && !this.#moved.memoryMiB && saved.memoryMiB > Number(input('memoryMiB').max))
      clamped.push(formatMiB(saved.memoryMiB));
    setText(
      'limits-note',
      clamped.length
        ? `Your saved ${clamped.join(' and ')} is more than can be offered now; move the slider to change it.`
        : '',
    );
    show('limits-note', clamped.length > 0);
  }

  #readForm(): SettingsPatch {
    const saved = this.#saved;
    const number = (text: string) => (text.trim() === '' ? Number.NaN : Number(text));
    return {
      clusterAddress: input('clusterAddress').value,
      managerUrl: input('managerUrl').value,
      cpus: saved && !this.#moved.cpus ? saved.cpus : Number(input('cpus').value),
      memoryMiB: saved && !this.#moved.memoryMiB ? saved.memoryMiB : Number(input('memoryMiB').value),
      image: input('image').value,
      startAtLogin: input('startAtLogin').checked,
      onQuit: byTestId<HTMLSelectElement>('input-onQuit').value as Settings['onQuit'],
      statusPort: number(input('statusPort').value),
      network: byTestId<HTMLSelectElement>('input-network').value as Settings['network'],
      policy: this.#policy.read(),
      notifications: input('notifications').checked,
      updates: byTestId<HTMLSelectElement>('input-updates').value as Settings['updates'],
      acceptWork: byTestId<HTMLSelectElement>('input-acceptWork').value as Settings['acceptWork'],
      sandboxNetwork: input('sandboxNetwork').checked,
    };
  }

  #clearErrors(): void {
    for (const field of FIELDS) this.#fieldError(field, null);
    this.#policy.clearErrors();
  }

  #fieldError(field: Field, message: string | null): void {
    setText(`error-${field}`, message ? sentence(message) : '');
    show(`error-${field}`, message !== null);
    if (message) control(field).setAttribute('aria-invalid', 'true');
    else control(field).removeAttribute('aria-invalid');
  }

  #showErrors(errors: SettingsErrors): string[] {
    const unplaced: string[] = [];
    let first: HTMLElement | null = null;
    for (const [key, message] of Object.entries(errors)) {
      if (!message) continue;
      if (key === 'policy') {
        first ??= this.#policy.showError(message);
      } else if ((FIELDS as readonly string[]).includes(key)) {
        this.#fieldError(key as Field, message);
        first ??= control(key as Field);
      } else {
        unplaced.push(sentence(message));
      }
    }
    first?.focus();
    return unplaced;
  }

  #result(text: string, bad: boolean): void {
    const result = byTestId('save-result');
    result.textContent = text;
    result.classList.toggle('field-error', bad);
  }

  async #save(): Promise<void> {
    const button = byTestId<HTMLButtonElement>('save-button');
    this.#clearErrors();
    button.disabled = true;
    this.#result('Saving…', false);
    try {
      const saved = await this.#api['settings:save'](this.#readForm());
      if (!saved.ok) {
        const other = this.#showErrors(saved.errors);
        this.#result(['Nothing was saved: correct the marked fields.', ...other].join(' '), true);
        return;
      }
      this.fill(saved.settings);
      this.#onSaved(saved.settings);
      const token = input('token').value;
      if (token.trim() !== '') {
        const stored = await this.#api['token:set'](token);
        if (!stored.ok) {
          this.#fieldError('token', stored.error);
          this.#result('Settings saved; the enrollment token was not stored.', true);
          return;
        }
        input('token').value = '';
        this.showTokenState(await this.#api['token:get-state']());
      }
      this.#result('Saved.', false);
    } catch (error) {
      this.#result(`Nothing was saved: ${errorMessage(error)}`, true);
    } finally {
      button.disabled = false;
    }
  }
}
