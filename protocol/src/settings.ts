import { z } from 'zod';

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

export const Settings = z.object({
  version: z.literal(1),
  /** Empty means "not configured": the app offers the local playground. */
  clusterAddress: z.union([z.literal(''), ClusterAddress]),
  managerUrl: z.union([z.literal(''), ManagerUrl]),
  cpus: z.number().min(0.5, 'must be at least 0.5 CPU, e.g. 2').max(1024, 'must be at most 1024 CPUs, e.g. 2'),
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
});
export type Settings = z.infer<typeof Settings>;

export const DEFAULT_SETTINGS: Settings = {
  version: 1,
  clusterAddress: '',
  managerUrl: '',
  cpus: 2,
  memoryMiB: 4096,
  image: 'ray-agent:dev',
  contribute: false,
  startAtLogin: false,
  onQuit: 'stop',
  statusPort: 8765,
};

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
