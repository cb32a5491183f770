import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { WIREGUARD_SOCKET_DIR } from '../../src/wireguard-go.js';

/** Why the namespace tests cannot run here; in CI they must run, so a missing prerequisite fails instead. */
export function netnsSkipReason(): string | undefined {
  const reason = missingPrerequisite();
  if (reason && process.env.CI)
    throw new Error(`the overlay's namespace tests must run in CI, but this machine ${reason}`);
  return reason;
}

function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, wireguard-go)';
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return 'needs /dev/net/tun (wireguard-go makes a TUN device)';
  }
  for (const tool of ['ip', 'wg', 'wireguard-go', 'iptables'])
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `needs ${tool} on PATH`;
    }
  return undefined;
}

export function sh(file: string, args: string[]): string {
  return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Network namespaces joined by veth pairs, all named with one random tag so parallel runs do not collide, and all
 * removed by `cleanup` (deleting a namespace deletes its links, and ends the wireguard-go processes in it).
 */
export class NetnsLab {
  readonly tag = randomBytes(2).toString('hex');
  private readonly namespaces: string[] = [];

  ns(name: string): string {
    const full = `rwt-${name}-${this.tag}`;
    sh('ip', ['netns', 'add', full]);
    this.namespaces.push(full);
    this.exec(full, 'ip', ['link', 'set', 'lo', 'up']);
    return full;
  }

  /** A veth pair between two namespaces, with an address (CIDR) on each end. */
  link(a: string, aCidr: string, b: string, bCidr: string, name: string): void {
    const left = `${name}a${this.tag}`;
    const right = `${name}b${this.tag}`;
    sh('ip', ['link', 'add', left, 'netns', a, 'type', 'veth', 'peer', 'name', right, 'netns', b]);
    this.exec(a, 'ip', ['addr', 'add', aCidr, 'dev', left]);
    this.exec(b, 'ip', ['addr', 'add', bCidr, 'dev', right]);
    this.exec(a, 'ip', ['link', 'set', left, 'up']);
    this.exec(b, 'ip', ['link', 'set', right, 'up']);
  }

  /** An interface name unique to this run (wireguard-go's control socket is on the shared file system). */
  iface(name: string): string {
    return `${name}${this.tag}`;
  }

  exec(ns: string, file: string, args: string[]): string {
    return sh('ip', ['netns', 'exec', ns, file, ...args]);
  }

  /**
   * Ends this run's wireguard-go processes (found by their interface names, which carry the tag): one orphaned by a
   * kill -9 of its parent keeps its namespace alive after `ip netns delete`.
   */
  cleanup(): void {
    for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        continue;
      }
      if (argv[0]?.endsWith('wireguard-go') && argv[1]?.endsWith(this.tag)) process.kill(Number(pid), 'SIGKILL');
    }
    // A killed wireguard-go leaves its control socket behind.
    for (const name of existsSync(WIREGUARD_SOCKET_DIR) ? readdirSync(WIREGUARD_SOCKET_DIR) : [])
      if (name.endsWith(`${this.tag}.sock`)) rmSync(`${WIREGUARD_SOCKET_DIR}/${name}`, { force: true });
    for (const ns of this.namespaces.splice(0))
      try {
        sh('ip', ['netns', 'delete', ns]);
      } catch {
        // Already gone.
      }
  }
}
