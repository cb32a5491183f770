import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { SettingsStore } from '../app/settings-store.js';
import { TOKEN_FILE } from '../app/token-vault.js';
import { AgentContainer } from '../container/agent-container.js';
import { readDelivered } from '../container/state-volume-secrets.js';
import { DockerEngine } from '../engine/docker-engine.js';
import { type CliIo, fail, type Globals, saveErrors } from './cli-context.js';
import { runningRunPid } from './run-pid.js';
import { SETTING_PATHS, settingPath, unknownKeyMessage } from './setting-paths.js';

/** Keys whose change the agent container or the policy must follow; the others only shape the app. */
const AGENT_KEYS = new Set(['cpus', 'memory', 'image', 'network', 'statusPort']);

/**
 * `ray-agent config get [KEY]` and `ray-agent config set KEY VALUE`: the settings file the window writes, through
 * the same store and schema. No Docker needed, except to tell whether the agent holds a token.
 */
export function addConfigCommand(program: Command, io: CliIo): void {
  const config = program
    .command('config')
    .description('read or change the settings (the same file the tray app writes)')
    .addHelpText(
      'after',
      `\nKeys:\n${SETTING_PATHS.map((entry) => `  ${entry.key.padEnd(24)}${entry.example}${entry.readOnly ? ` (${entry.readOnly})` : ''}`).join('\n')}\n  ${'token'.padEnd(24)}(get only: whether one is stored; never printed)\n`,
    );

  config
    .command('get')
    .description('print every setting as `key = value`, or the value of one')
    .argument('[key]', 'one setting, e.g. cpus or policy.idle')
    .action(async (key: string | undefined) => {
      const globals = program.opts<Globals>();
      const store = new SettingsStore(globals.settingsDir);
      const loaded = store.load();
      if (loaded.notice) io.stderr(`${loaded.notice}\n`);
      if (key === 'token') {
        io.stdout(`${await tokenState(globals, io)}\n`);
        return;
      }
      if (key !== undefined) {
        const entry = settingPath(key) ?? fail(unknownKeyMessage(key));
        io.stdout(`${entry.get(loaded.settings)}\n`);
        return;
      }
      const lines = SETTING_PATHS.map((entry) => `${entry.key} = ${entry.get(loaded.settings)}`);
      lines.push(`token = ${await tokenState(globals, io)}`);
      io.stdout(`${lines.join('\n')}\n`);
    });

  config
    .command('set')
    .description('change one setting; a running `ray-agent run` applies it')
    .argument('<key>', 'e.g. cpus, memory, policy.idle (see `ray-agent config --help`)')
    .argument('<value>', 'e.g. 2, 4g, 10m, off')
    .action((key: string, value: string) => {
      const globals = program.opts<Globals>();
      if (key === 'token')
        fail('token: give it to `ray-agent join --token-file FILE` or `ray-agent up --token-file FILE`');
      const entry = settingPath(key) ?? fail(unknownKeyMessage(key));
      if (entry.readOnly || !entry.set) fail(`${key} ${entry.readOnly ?? 'cannot be set'}`);
      const store = new SettingsStore(globals.settingsDir);
      const loaded = store.load();
      if (loaded.notice) io.stderr(`${loaded.notice}\n`);
      const patch = entry.set(value, loaded.settings);
      if (typeof patch === 'string') fail(`${key}: ${patch}`);
      const saved = store.save(patch);
      if (!saved.ok) fail(...saveErrors(saved.errors, () => key));
      const before = entry.get(loaded.settings);
      const after = entry.get(saved.settings);
      io.stdout(`${key} = ${after}${after === before ? ' (unchanged)' : ` (was ${before})`}\n`);
      if (after !== before) io.stderr(`${whoApplies(key, globals.settingsDir)}\n`);
    });
}

/** One sentence on when the change takes effect: the CLI only writes the file. */
function whoApplies(key: string, settingsDir: string): string {
  if (key === 'startAtLogin')
    return 'startAtLogin is for the tray app; on a machine without a desktop, start `ray-agent run` as a service (see `ray-agent run --help`)';
  const pid = runningRunPid(settingsDir);
  const live = key === 'cpus' || key === 'memory' ? ' (CPU and memory change live where Docker allows)' : '';
  if (pid !== null) return `the running \`ray-agent run\` (pid ${pid}) picks it up now${live}`;
  if (AGENT_KEYS.has(key)) return 'saved; `ray-agent up` (or `ray-agent run`) applies it to the agent';
  if (key.startsWith('policy.')) return 'saved; `ray-agent run` (or the tray app) applies the policy';
  return 'saved';
}

/** Whether a token is stored, and where; never the token. */
async function tokenState(globals: Globals, io: CliIo): Promise<string> {
  const found: string[] = [];
  if (existsSync(path.join(globals.settingsDir, TOKEN_FILE))) found.push("stored in the tray app's keychain");
  const engine = DockerEngine.fromEnvironment({ timeoutMs: 3000 }, io.env);
  const state = await engine.check();
  if (state.kind === 'ready') {
    const info = await new AgentContainer(engine.docker, { name: globals.container }).find();
    const delivered = info === null ? {} : await readDelivered(engine.docker.getContainer(info.Id));
    if (delivered.token !== undefined) found.push('delivered to the agent');
  }
  const known = found.length > 0 ? `${found.join(' and ')} (never shown)` : 'none stored';
  return state.kind === 'ready' ? known : `${known}; the agent's state volume was not checked (${state.message})`;
}
