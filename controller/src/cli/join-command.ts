import { readFileSync } from 'node:fs';
import { EnrollmentToken, type Settings, type SettingsPatch, validateSettings } from '@ray-agent/protocol';
import type { Command } from 'commander';
import {
  type CliIo,
  cliSpec,
  context,
  deliveredManagerCa,
  fail,
  type Globals,
  progressPrinter,
  requireEngine,
  saveErrors,
  waitForContributing,
} from './cli-context.js';
import { describeView, positiveInt } from './describe.js';
import { SETTING_PATHS, settingPath } from './setting-paths.js';

interface JoinOptions {
  head: string;
  manager: string;
  tokenFile?: string;
  managerCa?: string;
  cpus?: string;
  memory?: string;
  network?: string;
  start: boolean;
  wait: number;
}

/** The flag each setting comes from, so a refused value is named as the person typed it. */
const FLAG_OF: Readonly<Record<string, string>> = {
  clusterAddress: '--head',
  managerUrl: '--manager',
  cpus: '--cpus',
  memoryMiB: '--memory',
  network: '--network',
};

/** What `join` shows as changed, in the names `config get` uses. */
const SHOWN = ['head', 'manager', 'cpus', 'memory', 'network', 'contribute'];

/**
 * `ray-agent join`: the GitHub runner's `config.sh --url --token` for this agent. Writes the settings the window
 * writes (same store, same schema, same messages), delivers the token into the agent's state volume as
 * `up --token-file` does, and starts contributing. Joining another cluster replaces the settings and says what
 * changed.
 */
export function addJoinCommand(program: Command, io: CliIo): void {
  program
    .command('join')
    .description('join a Ray cluster: save its head and manager, deliver the enrollment token, start contributing')
    .requiredOption('--head <address>', "the cluster's Ray head: ray://HOST:10001 or HOST:6379")
    .requiredOption('--manager <url>', "the cluster's manager: https://HOST:8443")
    .option('--token-file <file>', 'a file holding the enrollment token the manager printed (needed until registered)')
    .option('--manager-ca <file>', "PEM file of a private CA that signed the manager's certificate")
    .option('--cpus <n>', 'whole CPUs to give, e.g. 2')
    .option('--memory <size>', 'memory to give, e.g. 4g or 4096m')
    .option('--network <mode>', 'overlay (through the cluster gateway when offered) or direct')
    .option('--no-start', 'save the settings only; `ray-agent up --token-file FILE` starts later')
    .option('--wait <seconds>', 'how long to wait for "contributing"', positiveInt, 240)
    .addHelpText(
      'after',
      '\nExample:\n  ray-agent join --head ray://ray-head.lan:10001 --manager https://manager.lan:8443 --token-file ./token --cpus 4 --memory 8g',
    )
    .action(async (options: JoinOptions) => {
      const globals = program.opts<Globals>();
      const ctx = context(globals, io);
      const before = ctx.settings;
      const token = options.tokenFile !== undefined ? readToken(options.tokenFile) : undefined;
      if (token === undefined && options.start)
        fail('--token-file: required to start: a file holding the enrollment token the manager printed');
      const managerCaPem = options.managerCa !== undefined ? readCa(options.managerCa) : undefined;
      const patch = joinPatch(options, before);
      const nameOf = (key: string) => FLAG_OF[key] ?? key;
      // The schema's verdict first (the store gives the same one), so a bad flag is named whatever Docker's state.
      const checked = validateSettings({ ...before, ...patch });
      if (!checked.ok) fail(...saveErrors(checked.errors, nameOf));
      // Nothing is saved when it cannot start: the same command, run again once Docker runs, does it all.
      if (options.start) await requireEngine(ctx.engine);
      const saved = ctx.store.save(patch);
      if (!saved.ok) fail(...saveErrors(saved.errors, nameOf));
      ctx.settings = saved.settings;
      io.stdout(changes(before, saved.settings));
      if (!options.start) {
        io.stderr(
          'saved; not started (--no-start). `ray-agent up --token-file FILE` starts it; the token is needed until the first registration\n',
        );
        return;
      }
      const spec = cliSpec(saved.settings, ctx.agent.name, {
        token,
        managerCaPem: managerCaPem ?? (await deliveredManagerCa(ctx)),
        network: globals.dockerNetwork,
      });
      const result = await ctx.agent.up(spec, progressPrinter(io));
      if (result.secretsDelivered) io.stderr('  the enrollment token was delivered to the agent\n');
      for (const warning of result.warnings) io.stderr(`  ${warning}\n`);
      io.stdout(`${describeView(await waitForContributing(ctx, options.wait))}\n`);
    });
}

/** The flags as a settings patch; a flag whose text means no value fails here, named. */
export function joinPatch(
  options: Omit<JoinOptions, 'wait' | 'tokenFile' | 'managerCa'>,
  current: Settings,
): SettingsPatch {
  const patch: SettingsPatch = { clusterAddress: options.head, managerUrl: options.manager };
  if (options.start) patch.contribute = true;
  const problems: string[] = [];
  for (const [flag, key, text] of [
    ['--cpus', 'cpus', options.cpus],
    ['--memory', 'memory', options.memory],
    ['--network', 'network', options.network],
  ] as const) {
    if (text === undefined) continue;
    const part = settingPath(key)?.set?.(text, current);
    if (typeof part === 'string') problems.push(`${flag}: ${part}`);
    else Object.assign(patch, part);
  }
  if (problems.length > 0) fail(...problems);
  return patch;
}

/** `head = new (was old)` for each shown setting that changed. */
export function changes(before: Settings, after: Settings): string {
  const lines: string[] = [];
  for (const entry of SETTING_PATHS) {
    if (!SHOWN.includes(entry.key)) continue;
    const [old, now] = [entry.get(before), entry.get(after)];
    if (old !== now) lines.push(`${entry.key} = ${now} (was ${old === '(not set)' ? 'not set' : old})`);
  }
  return lines.length === 0 ? 'the settings were already these\n' : `${lines.join('\n')}\n`;
}

function readText(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    return fail(`${flag}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

function readToken(file: string): string {
  const parsed = EnrollmentToken.safeParse(readText('--token-file', file));
  if (!parsed.success) fail(`--token-file: the token ${parsed.error.issues[0]?.message ?? 'is not valid'}`);
  return parsed.data;
}

function readCa(file: string): string {
  const pem = readText('--manager-ca', file);
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    fail(`--manager-ca: ${file} is not a PEM certificate (it must hold -----BEGIN CERTIFICATE-----)`);
  return pem;
}
