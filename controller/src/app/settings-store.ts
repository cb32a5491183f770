import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import {
  DEFAULT_SETTINGS,
  migrateSettings,
  SETTINGS_VERSION,
  Settings,
  type SettingsErrors,
  SettingsPatch,
  type StoredSettings,
  storedVersion,
  validateSettings,
} from '@ray-agent/protocol';
import Conf from 'conf';

/**
 * The tray app's settings in `<dir>/config.json`: the file electron-store writes under Electron's
 * `app.getPath('userData')`, and the one the `ray-agent` CLI reads and writes. Writes go through `conf` (the library
 * electron-store is built on: same file, same tab-indented JSON, atomic temp-file + fsync + rename via `atomically`).
 * Reads are our own so a bad file is quarantined with its bytes kept instead of being thrown at or wiped, a file an
 * older app wrote is migrated (SETTINGS_MIGRATIONS) and one a newer app wrote is never reset.
 */
export const PRODUCT_DIR_NAME = 'Ray Agent';
export const CONFIG_FILE = 'config.json';

/** Where Electron's `userData` is for productName "Ray Agent", so the CLI and the app share one file. */
export function defaultSettingsDir(
  platform: NodeJS.Platform,
  env: Record<string, string | undefined>,
  homedir: string,
): string {
  if (platform === 'win32') {
    const appData = env.APPDATA || path.win32.join(homedir, 'AppData', 'Roaming');
    return path.win32.join(appData, PRODUCT_DIR_NAME);
  }
  if (platform === 'darwin') return path.posix.join(homedir, 'Library', 'Application Support', PRODUCT_DIR_NAME);
  // XDG says a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && path.posix.isAbsolute(xdg) ? xdg : path.posix.join(homedir, '.config');
  return path.posix.join(base, PRODUCT_DIR_NAME);
}

export interface LoadResult {
  settings: Settings;
  /** Something the person should be told: the file was unreadable and reset, or a newer app wrote it. */
  notice: string | null;
}

export type SaveOutcome = { ok: true; settings: Settings } | { ok: false; errors: SettingsErrors };

/** What is on disk, as far as this version of the app understands it. */
type FileState =
  | { kind: 'missing' }
  | { kind: 'unreadable' }
  | { kind: 'current'; stored: StoredSettings; settings: Settings }
  | { kind: 'older'; from: number; migrated: StoredSettings; settings: Settings }
  | { kind: 'newer'; version: number; stored: StoredSettings; settings: Settings };

export class SettingsStore {
  readonly dir: string;
  readonly file: string;
  #conf: Conf<StoredSettings> | null = null;
  /** Injected so tests can pin the quarantine file name. */
  readonly #now: () => Date;

  constructor(dir: string, options: { now?: () => Date } = {}) {
    this.dir = dir;
    this.file = path.join(dir, CONFIG_FILE);
    this.#now = options.now ?? (() => new Date());
  }

  /** Built only once the file is known to parse: conf's constructor throws on a bad file with clearInvalidConfig off. */
  #store(): Conf<StoredSettings> {
    this.#conf ??= new Conf<StoredSettings>({
      cwd: this.dir,
      configName: 'config',
      // Never silently wipe a file we could not read: load() quarantines it first.
      clearInvalidConfig: false,
      // Settings keys have no dots, but a literal key must never be read as a path.
      accessPropertiesByDotNotation: false,
    });
    return this.#conf;
  }

  /**
   * Reads, migrates a file an older app wrote (saving it, with the old bytes kept aside), fills missing keys from
   * the defaults and validates. A file a newer app wrote is read as far as this version understands it and left
   * untouched; a bad file is kept aside and replaced by defaults.
   */
  load(): LoadResult {
    const state = this.#read();
    switch (state.kind) {
      case 'missing':
        return { settings: { ...DEFAULT_SETTINGS }, notice: null };
      case 'unreadable': {
        const kept = this.#quarantine();
        return {
          settings: { ...DEFAULT_SETTINGS },
          notice: `Your settings file was unreadable and was reset to defaults; the old file is kept at ${kept}`,
        };
      }
      case 'older':
        this.#keepAside(`v${state.from}`);
        this.#write({ ...state.migrated, ...state.settings });
        return { settings: state.settings, notice: null };
      case 'newer':
        return { settings: state.settings, notice: newerNotice(state.version) };
      case 'current':
        return { settings: state.settings, notice: null };
    }
  }

  /** Merges the patch, validates the whole, and writes atomically only when valid; otherwise nothing changes. */
  save(patch: unknown): SaveOutcome {
    const parsedPatch = SettingsPatch.strict().safeParse(patch);
    if (!parsedPatch.success) return { ok: false, errors: fieldErrors(parsedPatch.error.issues) };
    const current = this.load().settings;
    // A key sent as undefined means "unchanged", not "clear it".
    const changes = Object.fromEntries(Object.entries(parsedPatch.data).filter(([, value]) => value !== undefined));
    const checked = validateSettings({ ...current, ...changes });
    if (!checked.ok) return checked;
    const state = this.#read();
    if (state.kind === 'newer') {
      // The newer app's file keeps its version, its keys this app does not know and every value not changed here.
      this.#write({ ...state.stored, ...changes });
    } else {
      // Unknown keys (e.g. of a newer app that did not bump the version) survive a save too.
      this.#write({ ...(state.kind === 'current' ? state.stored : {}), ...checked.settings });
    }
    return { ok: true, settings: checked.settings };
  }

  #read(): FileState {
    this.#removeStaleTempFiles();
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      throw error;
    }
    return classify(bytes);
  }

  #write(stored: StoredSettings): void {
    mkdirSync(this.dir, { recursive: true });
    this.#store().store = stored;
  }

  /** A copy of the file's bytes next to it, under a name that never overwrites an earlier copy. */
  #keepAside(reason: string): string {
    const stamp = this.#now().toISOString().replace(/[:.]/g, '-');
    let target = `${this.file}.${reason}-${stamp}`;
    for (let n = 1; existsSync(target); n++) target = `${this.file}.${reason}-${stamp}-${n}`;
    copyFileSync(this.file, target);
    return target;
  }

  #quarantine(): string {
    const target = this.#keepAside('corrupt');
    // Removed before conf is built (its constructor reads the file); a crash here leaves no file, which loads as
    // defaults, and the copy is already safe.
    rmSync(this.file, { force: true });
    this.#write({ ...DEFAULT_SETTINGS });
    return target;
  }

  /** `atomically` cleans its temp files on exit, but not after SIGKILL or power loss. */
  #removeStaleTempFiles(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith(`${CONFIG_FILE}.tmp-`)) rmSync(path.join(this.dir, name), { force: true });
    }
  }
}

function newerNotice(version: number): string {
  return `Your settings were written by a newer Ray Agent (settings version ${version}; this app knows up to ${SETTINGS_VERSION}); some options are not shown here, and they are kept in the file as they are.`;
}

/** What the bytes hold: unreadable when they do not parse, are no version, or do not validate once migrated. */
function classify(bytes: Buffer): FileState {
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { kind: 'unreadable' };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { kind: 'unreadable' };
  const stored = data as StoredSettings;
  const version = storedVersion(stored);
  if (version === null) return { kind: 'unreadable' };
  if (version > SETTINGS_VERSION) return { kind: 'newer', version, stored, settings: understood(stored) };
  let migrated: StoredSettings;
  try {
    migrated = migrateSettings(stored);
  } catch {
    return { kind: 'unreadable' };
  }
  const parsed = Settings.safeParse({ ...DEFAULT_SETTINGS, ...migrated });
  if (!parsed.success) return { kind: 'unreadable' };
  return version < SETTINGS_VERSION
    ? { kind: 'older', from: version, migrated, settings: parsed.data }
    : { kind: 'current', stored, settings: parsed.data };
}

/** A newer file, setting by setting: what this version can read, and the default for what it cannot. */
function understood(stored: StoredSettings): Settings {
  const settings: StoredSettings = { ...DEFAULT_SETTINGS };
  for (const [key, schema] of Object.entries(Settings.shape)) {
    if (key === 'version') continue;
    const field = schema.safeParse(stored[key]);
    if (field.success) settings[key] = field.data;
  }
  return Settings.parse(settings);
}

function fieldErrors(issues: ReadonlyArray<{ path: PropertyKey[]; message: string; code: string }>): SettingsErrors {
  const errors: SettingsErrors = {};
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      errors.version ??= `unknown setting: ${issue.message}`;
      continue;
    }
    const key = String(issue.path[0] ?? 'version') as keyof SettingsErrors;
    errors[key] ??= issue.message;
  }
  return errors;
}
