/**
 * RAY_HEAD names the cluster. Ray Client addresses (`ray://HOST:10001`) contribute no compute, so the agent joins
 * the head's GCS on the same host instead (port 6379 unless RAY_GCS_PORT says otherwise); a plain `HOST:PORT` is
 * taken as the GCS address itself.
 */
export interface GcsAddress {
  host: string;
  port: number;
}

const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^\[[0-9A-Fa-f:.]+\]$/;

export function parseRayHead(text: string, gcsPort: number): GcsAddress | string {
  const trimmed = text.trim();
  const client = /^ray:\/\/([^/:]+|\[[^\]]+\])(?::(\d+))?\/?$/.exec(trimmed);
  if (client) {
    const host = client[1] ?? '';
    if (!isHost(host)) return `has an invalid host "${host}"`;
    if (client[2] !== undefined && !isPort(Number(client[2]))) return `has an invalid port "${client[2]}"`;
    return { host, port: gcsPort };
  }
  if (trimmed.startsWith('ray://')) return 'must be ray://HOST or ray://HOST:PORT';
  if (trimmed.includes('://')) return 'must start with ray:// or be a plain HOST:PORT';
  const plain = /^([^/:]+|\[[^\]]+\]):(\d+)$/.exec(trimmed);
  if (!plain) return 'must be ray://HOST:10001 or HOST:PORT';
  const host = plain[1] ?? '';
  if (!isHost(host)) return `has an invalid host "${host}"`;
  const port = Number(plain[2]);
  if (!isPort(port)) return `has an invalid port "${plain[2]}"`;
  return { host, port };
}

function isHost(host: string): boolean {
  return host.length <= 253 && (HOST.test(host) || IPV6.test(host));
}

export function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

export function formatGcsAddress(address: GcsAddress): string {
  return `${address.host}:${address.port}`;
}
