import { networkOf } from './cidr.js';
import { CommandError, type Commands } from './commands.js';

export const GATEWAY_FORWARD_CHAIN = 'RAYWG-FORWARD';

/**
 * What may leave the overlay through the gateway: replies to connections made from the cluster side, traffic to
 * another overlay address (Ray nodes talk to each other), and traffic to the routes the gateway was given. Anything
 * else forwarded from the interface is dropped, so a provider cannot use the gateway to reach the rest of the
 * cluster's network or the internet. Traffic into the overlay is left to the host's own policy.
 */
export async function applyForwardPolicy(
  commands: Commands,
  iface: string,
  network: string,
  routes: readonly string[],
): Promise<void> {
  const iptables = (...args: string[]) => commands.run('iptables', ['-w', '5', ...args]);
  try {
    await iptables('-N', GATEWAY_FORWARD_CHAIN);
  } catch (error) {
    if (!(error instanceof CommandError && /exists/i.test(error.stderr))) throw error;
  }
  await iptables('-F', GATEWAY_FORWARD_CHAIN);
  await iptables('-A', GATEWAY_FORWARD_CHAIN, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
  await iptables('-A', GATEWAY_FORWARD_CHAIN, '-o', iface, '-d', networkOf(network), '-j', 'ACCEPT');
  for (const route of new Set(routes.map(networkOf)))
    await iptables('-A', GATEWAY_FORWARD_CHAIN, '-d', route, '-j', 'ACCEPT');
  await iptables('-A', GATEWAY_FORWARD_CHAIN, '-j', 'DROP');
  const jump = ['FORWARD', '-i', iface, '-j', GATEWAY_FORWARD_CHAIN];
  try {
    await iptables('-C', ...jump);
  } catch {
    await iptables('-I', ...jump);
  }
}

/** Removes the jump and the chain (the gateway's stop). */
export async function removeForwardPolicy(commands: Commands, iface: string): Promise<void> {
  const iptables = (...args: string[]) => commands.run('iptables', ['-w', '5', ...args]).catch(() => '');
  await iptables('-D', 'FORWARD', '-i', iface, '-j', GATEWAY_FORWARD_CHAIN);
  await iptables('-F', GATEWAY_FORWARD_CHAIN);
  await iptables('-X', GATEWAY_FORWARD_CHAIN);
}
