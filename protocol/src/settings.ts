import { z } from 'zod';
import { ContributionPolicy, DEFAULT_POLICY } from './policy.js';
import { AcceptWork } from './sandbox.js';

/**
 * The tray app's settings, as the settings window edits them and as the app and the `ray-agent` CLI persist them.
 * The enrollment token is not here: it lives in the OS keychain (Electron safeStorage).
 * Every message names the problem and gives a good example.
 */
const host = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const ClusterAddress = z
  .string()
  .trim()
  .refine((text) => {
    const client = /^ray:\/\/([^/:]+)(?::(\d{1,5}))?\/?$/.exec(text);
    const plain = /^([^/:]+):(\d{1,5})$/.exec(text);
    const match = client ?? plain;
    return match !== null && host.test(match[1] ?? '') && (match[2] === undefined || Number(match[2]) <= 65535);
  }, 'must be ray://HOST:10001 or HOST:6379, e.g. ray://ray-head.lan:10001');

export const ManagerUrl = z
  .string()
  .trim()
  .refine((text) => {
    try {
      const url = new URL(text);
      return url.protocol === 'https:' && !url.username && !url.password;
    } catch {
      return false;
    }
  }, 'must be an https:// URL without a user name, e.g. https://manager.lan:8443');

export const ImageName = z
  .string()
  .trim()
  .regex(/^[a-z0-9]+(?:[._\-/:@][a-zA-Z0-9_.-]+)*$/, 'must be an image reference, e.g. ray-agent:dev');

/**
 * The settings file's format version. Bumped with every change of meaning, and each bump adds its step to
 * SETTINGS_MIGRATIONS, so a file an older app wrote is migrated, never reset.
 */
export const SETTINGS_VERSION = 5;

export const Settings = z.object({
  version: z.literal(SETTINGS_VERSION),
  /** Empty means "not configured": the app offers the local playground. */
  clusterAddress: z.union([z.literal(''), ClusterAddress]),
  managerUrl: z.union([z.literal(''), ManagerUrl]),
  /** Whole CPUs: Ray schedules whole CPUs, so 2.5 would give Ray 2 while the window said 2.5. */
  cpus: z
    .number()
    .int('must be a whole number of CPUs, e.g. 2')
    .min(1, 'must be at least 1 CPU, e.g. 2')
    .max(1024, 'must be at most 1024 CPUs, e.g. 2'),
  memoryMiB: z
    .number()
    .int('must be a whole number of MiB, e.g. 4096')
    .min(1024, 'must be at least 1024 MiB, e.g. 4096'),
  image: ImageName,
  /** Contribute compute: the tray toggle. */
  contribute: z.boolean(),
  startAtLogin: z.boolean(),
  /** On quit: drain and stop the agent, or leave it contributing in the background. */
  onQuit: z.enum(['stop', 'leave-running']),
  statusPort: z.number().int().min(1024, 'must be 1024-65535, e.g. 8765').max(65535, 'must be 1024-65535, e.g. 8765'),
  /**
   * `overlay`: the agent runs beside a tunnel container and joins the cluster over its WireGuard overlay when the
   * manager offers a gateway (directly when it offers none). `direct`: no tunnel container; Ray's ports must be
   * reachable from the cluster some other way (a LAN, a VPN of one's own).
   */
  network: z.enum(['overlay', 'direct'], { error: () => 'must be overlay or direct, e.g. overlay' }),
  /** When to contribute and how to step aside (idle, schedule, battery, throttle, grace). */
  policy: ContributionPolicy,
  /** Desktop notifications for what needs the person (engine gone, token refused, crashes, a rolled-back update). */
  notifications: z.boolean(),
  /**
   * `auto`: look for a newer agent image of the configured tag, pull it in the background and switch to it after a
   * drain, when the policy allows; roll back if it does not reach contributing. `off`: only when the person asks.
   */
  updates: z.enum(['auto', 'off'], { error: () => 'must be auto or off, e.g. auto' }),
  /** `sandboxed`: only work inside gVisor sandboxes runs on this computer; `any`: ordinary Ray tasks too. */
  acceptWork: z.enum(AcceptWork.options, { error: () => 'must be any or sandboxed, e.g. any' }),
  /** Let a sandbox have the network its job asks for. Off: sandboxes get none at all. */
  sandboxNetwork: z.boolean(),
});
export type Settings = z.infer<typeof Settings>;

export const DEFAULT_SETTINGS: Settings = {
  version: SETTINGS_VERSION,
  clusterAddress: '',
  managerUrl: '',
  cpus: 2,
  memoryMiB: 4096,
  image: 'ray-agent:dev',
  contribute: false,
  startAtLogin: false,
  onQuit: 'stop',
  statusPort: 8765,
  network: 'overlay',
  policy: DEFAULT_POLICY,
  notifications: true,
  updates: 'auto',
  acceptWork: 'any',
  sandboxNetwork: false,
};

/** A settings file's contents as JSON, before it is known to be valid. */
export type StoredSettings = Record<string, unknown>;

/**
 * One step per old version: `SETTINGS_MIGRATIONS[n]` turns a version-n file into a version n+1 file. Steps keep the
 * keys they do not touch (and unknown ones); a value a step cannot make sense of is left for validation to refuse.
 */
export const SETTINGS_MIGRATIONS: Readonly<Record<number, (old: StoredSettings) => StoredSettings>> = {
  // v1 allowed 0.5-CPU steps; Ray schedules whole CPUs, so round down, keeping at least one.
  1: (old) => ({
    ...old,
    version: 2,
    cpus: typeof old.cpus === 'number' && Number.isFinite(old.cpus) ? Math.max(1, Math.floor(old.cpus)) : old.cpus,
  }),
  // v3 added the tunnel pair: an existing installation gets it too (the agent joins directly while the manager
  // offers no gateway, as before).
  2: (old) => ({ ...old, version: 3, network: old.network ?? 'overlay' }),
  // v4 added the contribution policy: an existing installation keeps contributing always (its old behaviour), with
  // the new defaults for stepping aside; notifications on; updates automatic.
  3: (old) => ({
    ...old,
    version: 4,
    policy: old.policy ?? DEFAULT_POLICY,
    notifications: old.notifications ?? true,
    updates: old.updates ?? 'auto',
  }),
  // v5 added gVisor sandboxes: an existing installation keeps taking any work, and sandboxes get no network.
  4: (old) => ({
    ...old,
    version: 5,
    acceptWork: old.acceptWork ?? 'any',
    sandboxNetwork: old.sandboxNetwork ?? false,
  }),
};

/** The version a file says it has: files from before versions were written count as 1; null when it is no version. */
export function storedVersion(data: StoredSettings): number | null {
  if (data.version === undefined) return 1;
  return typeof data.version === 'number' && Number.isInteger(data.version) && data.version >= 1 ? data.version : null;
}

/** Applies the migrations from the file's version up to SETTINGS_VERSION, in order; a newer file is returned as is. */
export function migrateSettings(data: StoredSettings): StoredSettings {
  const from = storedVersion(data);
  if (from === null) throw new RangeError(`settings version ${JSON.stringify(data.version)} is not a version number`);
  let current: StoredSettings = { ...data, version: from };
  for (let version = from; version < SETTINGS_VERSION; version++) {
    const step = SETTINGS_MIGRATIONS[version];
    if (step === undefined) throw new RangeError(`no migration from settings version ${version}`);
    current = step(current);
  }
  return current;
}

/** A partial update from the settings window; validated whole after merging. */
export const SettingsPatch = Settings.omit({ version: true }).partial();
export type SettingsPatch = z.infer<typeof SettingsPatch>;

/** Field-level messages, keyed by setting name, for inline display. */
export type SettingsErrors = Partial<Record<keyof Settings | 'token', string>>;

export function validateSettings(
  candidate: unknown,
): { ok: true; settings: Settings } | { ok: false; errors: SettingsErrors } {
  const parsed = Settings.safeParse(candidate);
  if (parsed.success) return { ok: true, settings: parsed.data };
  const errors: SettingsErrors = {};
  for (const issue of parsed.error.issues) {
    const key = String(issue.path[0] ?? 'version') as keyof Settings;
    errors[key] ??= issue.message;
  }
  return { ok: false, errors };
}

/** The enrollment token as pasted: trimmed; no inner whitespace or control characters; bounded. */
export const EnrollmentToken = z
  .string()
  .trim()
  .min(16, 'is too short: paste the whole token the manager printed')
  .max(4096, 'is too long: paste only the token the manager printed')
  .regex(/^[\x21-\x7e]+$/, 'contains spaces, line breaks or control characters: paste only the token');
