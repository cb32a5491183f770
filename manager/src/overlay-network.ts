/**
 * Address arithmetic of the overlay network: which hosts exist, which one is the gateway's, and which one a new
 * provider gets. Pure functions over IPv4 as 32-bit unsigned numbers.
 */

export interface OverlayNetwork {
  /** As given, e.g. 100.96.0.0/16. */
  cidr: string;
  /** The network address as a number. */
  base: number;
  prefix: number;
  /** The gateway's address: the first host. */
  gatewayAddress: string;
}

/** The longest prefix that leaves a gateway and at least one provider (a /30 has two hosts). */
export const MAX_OVERLAY_PREFIX = 30;

export function ipToNumber(address: string): number {
  return address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

export function numberToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

function size(prefix: number): number {
  return 2 ** (32 - prefix);
}

/**
 * Parses an already syntax-checked CIDR (protocol's Ipv4Cidr). Returns the problem as a sentence when the network
 * cannot serve as an overlay: host bits set, or too small for a gateway and one provider.
 */
export function parseOverlayNetwork(cidr: string): OverlayNetwork | { problem: string } {
  const [address = '', prefixText = ''] = cidr.split('/');
  const prefix = Number(prefixText);
  const value = ipToNumber(address);
  const base = value - (value % size(prefix));
  if (base !== value) return { problem: `${cidr} has host bits set; the network is ${numberToIp(base)}/${prefix}` };
  if (prefix > MAX_OVERLAY_PREFIX)
    return { problem: `a /${prefix} has no room for the gateway and a provider (at most /${MAX_OVERLAY_PREFIX})` };
  return { cidr, base, prefix, gatewayAddress: numberToIp(base + 1) };
}

/** True when `address` is a provider address of the network: inside it, not the network, broadcast or gateway. */
export function isProviderAddress(network: OverlayNetwork, address: string): boolean {
  const n = ipToNumber(address);
  return n >= network.base + 2 && n < network.base + size(network.prefix) - 1;
}

/** How many providers the network holds. */
export function providerCapacity(network: OverlayNetwork): number {
  return size(network.prefix) - 3;
}

/** The lowest provider address not in `taken`, or null when the network is full. */
export function lowestFreeAddress(network: OverlayNetwork, taken: Iterable<string>): string | null {
  const used = new Set<number>();
  for (const address of taken) used.add(ipToNumber(address));
  const last = network.base + size(network.prefix) - 2;
  for (let n = network.base + 2; n <= last; n++) if (!used.has(n)) return numberToIp(n);
  return null;
}
