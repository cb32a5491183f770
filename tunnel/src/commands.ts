import { type ChildProcess, execFile, spawn } from 'node:child_process';

/** A command that exited non-zero or could not start; `stderr` is its own explanation, kept for problem sentences. */
export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    readonly file: string,
    readonly args: readonly string[],
    readonly stderr: string,
    readonly code: number | string | null,
  ) {
    super(`${file} ${args.join(' ')} failed (${code}): ${stderr.trim() || 'no output'}`);
  }
}

/**
 * Runs the networking tools (ip, wg, wireguard-go, iptables) with argument arrays, never a shell. `netns` runs them in
 * a named network namespace (`ip netns exec`): a process outside the namespace can then drive an interface inside it,
 * which is how the tests run both ends on one machine. In a container the namespace is the container's own.
 */
export class Commands {
  constructor(readonly netns?: string) {}

  run(file: string, args: readonly string[]): Promise<string> {
    const [command, argv] = this.wrap(file, args);
    return new Promise((resolve, reject) => {
      const child = execFile(
        command,
        argv,
        { timeout: 15_000, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (error) {
            const code = (error as NodeJS.ErrnoException).code ?? child.exitCode;
            reject(new CommandError(file, args, String(stderr) || error.message, code ?? null));
          } else resolve(String(stdout));
        },
      );
    });
  }

  /** A long-running child (wireguard-go), its output piped to the caller. */
  spawn(file: string, args: readonly string[], env: NodeJS.ProcessEnv): ChildProcess {
    const [command, argv] = this.wrap(file, args);
    return spawn(command, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  }

  private wrap(file: string, args: readonly string[]): [string, string[]] {
    return this.netns ? ['ip', ['netns', 'exec', this.netns, file, ...args]] : [file, [...args]];
  }
}
