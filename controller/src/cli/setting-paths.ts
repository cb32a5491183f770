import type { ContributionPolicy, Settings, SettingsPatch } from '@ray-agent/protocol';
import { formatSchedule, parseSchedule } from '../policy/schedule-text.js';

/**
 * The settings as `ray-agent config get|set` names them: dotted keys for the policy's nested settings, the text a
 * person types for each, and the patch that text means. Only the text is read here; whether the value is allowed
 * is the settings schema's to say (SettingsStore.save), with the window's messages.
 */
export interface SettingPath {
  key: string;
  /** What the value looks like, for the list of keys. */
  example: string;
  get(settings: Settings): string;
  /** The patch the text means, or why the text means nothing (a sentence naming the problem, with an example). */
  set?(text: string, settings: Settings): SettingsPatch | string;
  /** Why this key is not set with `config set` (it has a command of its own). */
  readOnly?: string;
}

const MiB_PER_GiB = 1024;

/** `4g`, `4096m`, `1.5GiB`, or a bare number of MiB; null when it is no size. The schema judges the amount. */
export function parseMemoryMiB(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(g|gb|gib|m|mb|mib)?\s*$/i.exec(text);
  if (!match) return null;
  const amount = Number(match[1]);
  return match[2]?.toLowerCase().startsWith('g') ? amount * MiB_PER_GiB : amount;
}

export function formatMemory(mib: number): string {
  return mib % MiB_PER_GiB === 0 ? `${mib / MiB_PER_GiB}g` : `${mib}m`;
}

/** A number with an optional unit ("10m", "30%", "20s"); null when it is none. Range and wholeness: the schema's. */
function numberIn(text: string, units: readonly string[]): number | null {
  const trimmed = text.trim().toLowerCase();
  const unit = units.find((candidate) => trimmed.endsWith(candidate));
  const digits = unit === undefined ? trimmed : trimmed.slice(0, -unit.length).trim();
  return /^-?\d+(?:\.\d+)?$/.test(digits) ? Number(digits) : null;
}

const BOOLEAN: Readonly<Record<string, boolean>> = {
  true: true,
  on: true,
  yes: true,
  false: false,
  off: false,
  no: false,
};

function booleanSetting(key: 'startAtLogin' | 'notifications' | 'sandboxNetwork'): SettingPath {
  return {
    key,
    example: 'on | off',
    get: (settings) => (settings[key] ? 'on' : 'off'),
    set: (text) => {
      const value = BOOLEAN[text.trim().toLowerCase()];
      return value === undefined ? 'must be on or off, e.g. on' : { [key]: value };
    },
  };
}

function numberSetting(key: 'cpus' | 'statusPort', example: string): SettingPath {
  return {
    key,
    example,
    get: (settings) => String(settings[key]),
    set: (text) => {
      const value = numberIn(text, []);
      return value === null ? `must be a number, e.g. ${example}` : { [key]: value };
    },
  };
}

/** Passes the text on as is: the schema's enum or pattern is the whole rule. */
function textSetting(key: 'image' | 'network' | 'onQuit' | 'updates' | 'acceptWork', example: string): SettingPath {
  return { key, example, get: (settings) => String(settings[key]), set: (text) => ({ [key]: text.trim() }) };
}

/** A policy setting: the patch is the whole policy with one part changed, so the schema checks the whole. */
function policySetting(
  key: string,
  example: string,
  get: (policy: ContributionPolicy) => string,
  set: (text: string, policy: ContributionPolicy) => ContributionPolicy | string,
): SettingPath {
  return {
    key: `policy.${key}`,
    example,
    get: (settings) => get(settings.policy),
    set: (text, settings) => {
      const policy = set(text, settings.policy);
      return typeof policy === 'string' ? policy : { policy };
    },
  };
}

function policyNumber(
  key: string,
  units: readonly string[],
  example: string,
  get: (policy: ContributionPolicy) => number,
  with_: (policy: ContributionPolicy, value: number) => ContributionPolicy,
  unitShown = units[0] ?? '',
): SettingPath {
  return policySetting(
    key,
    example,
    (policy) => `${get(policy)}${unitShown}`,
    (text, policy) => {
      const value = numberIn(text, units);
      return value === null ? `must be a number, e.g. ${example}` : with_(policy, value);
    },
  );
}

export const SETTING_PATHS: readonly SettingPath[] = [
  {
    key: 'head',
    example: 'ray://HOST:10001',
    get: (s) => s.clusterAddress || '(not set)',
    readOnly: 'is set with `ray-agent join --head … --manager … --token-file …`',
  },
  {
    key: 'manager',
    example: 'https://HOST:8443',
    get: (s) => s.managerUrl || '(not set)',
    readOnly: 'is set with `ray-agent join --head … --manager … --token-file …`',
  },
  {
    key: 'contribute',
    example: 'on | off',
    get: (s) => (s.contribute ? 'on' : 'off'),
    readOnly: 'is switched with `ray-agent up` and `ray-agent down`',
  },
  numberSetting('cpus', '2'),
  {
    key: 'memory',
    example: '4g | 4096m',
    get: (s) => formatMemory(s.memoryMiB),
    set: (text) => {
      const mib = parseMemoryMiB(text);
      return mib === null ? 'must be a size in GiB or MiB, e.g. 4g or 4096m' : { memoryMiB: mib };
    },
  },
  textSetting('image', 'ray-agent:dev'),
  textSetting('network', 'overlay | direct'),
  numberSetting('statusPort', '8765'),
  textSetting('onQuit', 'stop | leave-running'),
  booleanSetting('startAtLogin'),
  booleanSetting('notifications'),
  textSetting('updates', 'auto | off'),
  textSetting('acceptWork', 'any | sandboxed'),
  booleanSetting('sandboxNetwork'),
  policySetting(
    'idle',
    'off | 10m',
    (policy) => (policy.idle.enabled ? `${policy.idle.minutes}m` : 'off'),
    (text, policy) => {
      const word = text.trim().toLowerCase();
      if (word === 'off') return { ...policy, idle: { ...policy.idle, enabled: false } };
      if (word === 'on') return { ...policy, idle: { ...policy.idle, enabled: true } };
      const minutes = numberIn(text, ['minutes', 'min', 'm']);
      return minutes === null
        ? 'must be off or a number of idle minutes, e.g. 10m'
        : { ...policy, idle: { enabled: true, minutes } };
    },
  ),
  policySetting(
    'schedule',
    'off | "mon-fri 18-08, sat-sun all day"',
    (policy) => (policy.schedule.enabled ? formatSchedule(policy.schedule.hours) : 'off'),
    (text, policy) => {
      const word = text.trim().toLowerCase();
      if (word === 'off') return { ...policy, schedule: { ...policy.schedule, enabled: false } };
      if (word === 'on') return { ...policy, schedule: { ...policy.schedule, enabled: true } };
      try {
        return { ...policy, schedule: { enabled: true, hours: parseSchedule(text) } };
      } catch (error) {
        // Its messages start with the word the key already names.
        return (error as Error).message.replace(/^schedule:?\s*/, '');
      }
    },
  ),
  policySetting(
    'battery',
    'allow | pause',
    (policy) => (policy.battery.pauseOnBattery ? 'pause' : 'allow'),
    (text, policy) => {
      const word = text.trim().toLowerCase();
      if (word !== 'allow' && word !== 'pause') return 'must be allow or pause (on battery power), e.g. pause';
      return { ...policy, battery: { ...policy.battery, pauseOnBattery: word === 'pause' } };
    },
  ),
  policyNumber(
    'minBattery',
    ['%', 'percent'],
    '30%',
    (policy) => policy.battery.minPercent,
    (policy, minPercent) => ({ ...policy, battery: { ...policy.battery, minPercent } }),
  ),
  policyNumber(
    'throttle',
    ['%', 'percent'],
    '10%',
    (policy) => policy.throttlePercent,
    (policy, throttlePercent) => ({ ...policy, throttlePercent }),
  ),
  policyNumber(
    'grace',
    ['minutes', 'min', 'm'],
    '5m',
    (policy) => policy.graceMinutes,
    (policy, graceMinutes) => ({ ...policy, graceMinutes }),
    'm',
  ),
  policyNumber(
    'goingAwayDrain',
    ['seconds', 'sec', 's'],
    '20s',
    (policy) => policy.goingAwayDrainSeconds,
    (policy, goingAwayDrainSeconds) => ({ ...policy, goingAwayDrainSeconds }),
    's',
  ),
];

export function settingPath(key: string): SettingPath | undefined {
  return SETTING_PATHS.find((path) => path.key === key);
}

export function unknownKeyMessage(key: string): string {
  return `unknown setting "${key}": the settings are ${SETTING_PATHS.map((path) => path.key).join(', ')}`;
}
