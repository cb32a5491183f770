import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_SETTINGS, Settings, type SettingsErrors, SettingsPatch, validateSettings } from '@ray-agent/protocol';
import Conf from 'conf';

/**
 * The tray app's settings in `<dir>/config.json`: the file electron-store writes under Electron's
 * `app.getPath('userData')`, and the one the `ray-agent` CLI reads and writes. Writes go through `conf` (the library
 * electron-store is built on: same file, same tab-indented JSON, atomic temp-file + fsync + rename via `atomically`).
 * Reads are our own so a bad file is quarantined with its bytes kept instead of being thrown at or wiped.
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
  /** Set when the file was unreadable and reset; say it to the person. */
  notice: string | null;
}

export type SaveOutcome = { ok: true; settings: Settings } | { ok: false; errors: SettingsErrors };

type Stored = Record<string, unknown>;

export class SettingsStore {
  readonly dir: string;
  readonly file: string;
  #conf: Conf<Stored> | null = null;
  /** Injected so tests can pin the quarantine file name. */
  readonly #now: () => Date;

  constructor(dir: string, options: { now?: () => Date } = {}) {
    this.dir = dir;
    this.file = path.join(dir, CONFIG_FILE);
    this.#now = options.now ?? (() => new Date());
  }

  /** Built only once the file is known to parse: conf's constructor throws on a bad file with clearInvalidConfig off. */
  #store(): Conf<Stored> {
    this.#conf ??= new Conf<Stored>({
      cwd: this.dir,
      configName: 'config',
      // Never silently wipe a file we could not read: load() quarantines it first.
      clearInvalidConfig: false,
      // Settings keys have no dots, but a literal key must never be read as a path.
      accessPropertiesByDotNotation: false,
    });
    return this.#conf;
  }

  /** Reads, fills missing keys from the defaults, validates; a bad file is kept aside and replaced by defaults. */
  load(): LoadResult {
    this.#removeStaleTempFiles();
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        return { settings: { ...DEFAULT_SETTINGS }, notice: null };
      throw error;
    }
    const settings = parseSettings(bytes);
    if (settings) return { settings, notice: null };
    const kept = this.#quarantine();
    return {
      settings: { ...DEFAULT_SETTINGS },
      notice: `Your settings file was unreadable and was reset to defaults; the old file is kept at ${kept}`,
    };
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
    this.#write(checked.settings);
    return { ok: true, settings: checked.settings };
  }

  #write(settings: Settings): void {
    mkdirSync(this.dir, { recursive: true });
    this.#store().store = { ...settings };
  }

  #quarantine(): string {
    const stamp = this.#now().toISOString().replace(/[:.]/g, '-');
    let target = `${this.file}.corrupt-${stamp}`;
    for (let n = 1; existsSync(target); n++) target = `${this.file}.corrupt-${stamp}-${n}`;
    copyFileSync(this.file, target);
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

/** The settings in the bytes, or null when they do not parse or do not validate. */
function parseSettings(bytes: Buffer): Settings | null {
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null;
  // Keys a newer version added and this one does not know are dropped by the schema rather than failing the load.
  const parsed = Settings.safeParse({ ...DEFAULT_SETTINGS, ...data });
  return parsed.success ? parsed.data : null;
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
