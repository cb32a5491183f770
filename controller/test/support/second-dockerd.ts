import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { DockerEndpoint } from '../../src/engine/docker-endpoint.js';

/**
 * A second Docker Engine of the test's own, on its own socket, data root and bridge, that the test may start and
 * stop at will without touching the machine's engine.
 */
export class SecondDockerd {
  readonly root = mkdtempSync('/tmp/rap-dd-');
  readonly socketPath = path.join(this.root, 'docker.sock');
  // Never `--bridge none`: dockerd then deletes the host's docker0, which the machine's own engine needs. A
  // bridge of our own, with an address outside Docker's pools and this machine's routes, leaves docker0 alone.
  readonly bridge = `rapbr${randomBytes(3).toString('hex')}`;
  private daemon: ChildProcess | undefined;

  constructor() {
    execFileSync('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    execFileSync('ip', ['addr', 'add', '10.213.77.1/24', 'dev', this.bridge]);
  }

  endpoint(): DockerEndpoint {
    return {
      options: { socketPath: this.socketPath },
      address: `unix://${this.socketPath}`,
      socketPath: this.socketPath,
      source: 'default',
      description: 'test',
      warning: null,
    };
  }

  start(): void {
    this.daemon = spawn(
      'dockerd',
      [
        '--host',
        `unix://${this.socketPath}`,
        '--data-root',
        path.join(this.root, 'data'),
        '--exec-root',
        path.join(this.root, 'exec'),
        '--pidfile',
        path.join(this.root, 'docker.pid'),
        '--bridge',
        this.bridge,
        // No iptables or masquerading: the machine's engine owns those rules.
        '--iptables=false',
        '--ip-masq=false',
      ],
      { stdio: 'ignore' },
    );
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const daemon = this.daemon;
    if (daemon === undefined || daemon.exitCode !== null || daemon.signalCode !== null) return;
    const exited = new Promise((resolve) => daemon.once('exit', resolve));
    daemon.kill(signal);
    await exited;
  }

  async remove(): Promise<void> {
    await this.stop('SIGTERM');
    execFileSync('ip', ['link', 'del', this.bridge]);
    // A daemon that was killed leaves its mounts (overlay, netns) under the data root: unmount them first.
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[1] ?? '')
      .filter((mount) => mount.startsWith(`${this.root}/`))
      .sort()
      .reverse();
    for (const mount of mounts) execFileSync('umount', ['-l', mount]);
    rmSync(this.root, { recursive: true, force: true });
  }
}

export function hasLink(name: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
