import type { ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Commands } from './commands.js';
import { linkDelete, linkShow } from './ip.js';

/** Where wireguard-go keeps its control socket: the host's (or container's) file system, not the network namespace. */
export const WIREGUARD_SOCKET_DIR = '/var/run/wireguard';

const READY_TIMEOUT_MS = 10_000;

/**
 * `wireguard-go IFACE` as a supervised foreground child: it owns the TUN device, so the interface lives exactly as
 * long as this process. `start` brings one up (recreating a leftover interface of an earlier run: after a kill -9 the
 * old daemon is still running, orphaned, and exits once its link is deleted); `generation` counts the starts, so the
 * caller knows when a restarted daemon needs its configuration again.
 */
export class WireguardGo {
  private child: ChildProcess | undefined;
  private output = '';
  private exitNote: string | undefined;
  generation = 0;

  constructor(
    private readonly commands: Commands,
    readonly iface: string,
    private readonly onExit: (note: string) => void = () => {},
  ) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Why the last daemon stopped or failed, with its last output (the kernel's reason, e.g. no /dev/net/tun). */
  get lastFailure(): string | undefined {
    return this.exitNote;
  }

  async start(): Promise<void> {
    if (this.child) return;
    if (await linkShow(this.commands, this.iface)) {
      await linkDelete(this.commands, this.iface).catch(() => {});
      await waitFor(() => !existsSync(this.socketPath), 5_000);
    }
    // A socket without its daemon (one killed with -9 leaves it) would read as ready before the new one listens.
    rmSync(this.socketPath, { force: true });
    this.output = '';
    const child = this.commands.spawn('wireguard-go', [this.iface], {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      WG_PROCESS_FOREGROUND: '1',
    });
    const keep = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString('utf8')).slice(-2_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.child = child;
    let exited = false;
    child.once('exit', (code, signal) => {
      exited = true;
      if (this.child === child) this.child = undefined;
      this.exitNote = `wireguard-go exited (${signal ?? code}): ${lastLine(this.output)}`;
      this.onExit(this.exitNote);
    });
    child.once('error', (error) => {
      exited = true;
      if (this.child === child) this.child = undefined;
      this.exitNote = `wireguard-go could not start: ${error.message}`;
    });
    const ready = await waitFor(() => exited || existsSync(this.socketPath), READY_TIMEOUT_MS);
    if (exited || !ready) {
      if (!exited) child.kill('SIGKILL');
      this.child = undefined;
      throw new Error(
        this.exitNote ?? `wireguard-go did not open ${this.socketPath} within ${READY_TIMEOUT_MS / 1000} s`,
      );
    }
    this.exitNote = undefined;
    this.generation += 1;
  }

  /** Stops the daemon and removes the interface (deleting the link also ends a daemon that is not this child). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([gone, sleep(3_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (await linkShow(this.commands, this.iface)) await linkDelete(this.commands, this.iface).catch(() => {});
  }

  private get socketPath(): string {
    return `${WIREGUARD_SOCKET_DIR}/${this.iface}.sock`;
  }
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) return false;
    await sleep(50);
  }
  return true;
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').trim() || 'no output';
}
