import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CommanderError } from 'commander';
import { buildCli, CliError } from '../../src/cli/cli.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The real command line (buildCli), parsed as the user typed it, over a settings folder of the test's own. Docker
 * is pointed at a socket that does not exist, so nothing here reaches an engine: the commands that need none
 * (config, join --no-start, argument errors) are what these tests cover.
 */
export function cliIn(dir: string) {
  const env = { DOCKER_HOST: `unix://${path.join(dir, 'no-docker.sock')}`, RAY_AGENT_SETTINGS_DIR: dir };
  return async (...args: string[]): Promise<CliRun> => {
    let stdout = '';
    let stderr = '';
    const program = buildCli(
      {
        stdout: (text) => {
          stdout += text;
        },
        stderr: (text) => {
          stderr += text;
        },
        env,
      },
      { exitOverride: true },
    );
    try {
      await program.parseAsync(args, { from: 'user' });
      return { code: 0, stdout, stderr };
    } catch (error) {
      if (error instanceof CliError)
        return { code: 1, stdout, stderr: stderr + error.lines.map((line) => `ray-agent: ${line}\n`).join('') };
      if (error instanceof CommanderError) return { code: error.exitCode, stdout, stderr };
      throw error;
    }
  };
}

export function tempSettingsDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'ra-cli-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
