import { z } from 'zod';
import { CommandError, type Commands } from './commands.js';

// `ip -j` prints JSON; only the fields used here are read.
const AddrList = z.array(
  z.object({
    ifname: z.string(),
    addr_info: z.array(z.object({ family: z.string(), local: z.string(), prefixlen: z.number() })),
  }),
);
const RouteList = z.array(z.object({ dst: z.string() }));
const LinkList = z.array(z.object({ ifname: z.string(), mtu: z.number(), flags: z.array(z.string()) }));

export interface LinkInfo {
  mtu: number;
  up: boolean;
}

/** The link, or null when there is none of that name in the namespace. */
export async function linkShow(commands: Commands, iface: string): Promise<LinkInfo | null> {
  let out: string;
  try {
    out = await commands.run('ip', ['-j', 'link', 'show', 'dev', iface]);
  } catch (error) {
    if (error instanceof CommandError && /does not exist|Cannot find device/.test(error.stderr)) return null;
    throw error;
  }
  const link = LinkList.parse(JSON.parse(out))[0];
  return link ? { mtu: link.mtu, up: link.flags.includes('UP') } : null;
}

export async function linkSetUp(commands: Commands, iface: string, mtu: number): Promise<void> {
  await commands.run('ip', ['link', 'set', 'dev', iface, 'mtu', String(mtu), 'up']);
}

export async function linkDelete(commands: Commands, iface: string): Promise<void> {
  await commands.run('ip', ['link', 'delete', 'dev', iface]);
}

/** The interface's IPv4 addresses as CIDRs (address/prefix). */
export async function addrList(commands: Commands, iface: string): Promise<string[]> {
  const out = await commands.run('ip', ['-j', '-4', 'addr', 'show', 'dev', iface]);
  return AddrList.parse(JSON.parse(out)).flatMap((link) =>
    link.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
  );
}

/** Exactly these addresses on the interface: missing ones added, others removed. */
export async function addrSync(commands: Commands, iface: string, wanted: readonly string[]): Promise<void> {
  const present = await addrList(commands, iface);
  for (const cidr of wanted) if (!present.includes(cidr)) await commands.run('ip', ['addr', 'add', cidr, 'dev', iface]);
  for (const cidr of present) if (!wanted.includes(cidr)) await commands.run('ip', ['addr', 'del', cidr, 'dev', iface]);
}

/** The main table's IPv4 routes through the interface, as destinations (a /32 prints without its prefix). */
export async function routeList(commands: Commands, iface: string): Promise<string[]> {
  const out = await commands.run('ip', ['-j', '-4', 'route', 'show', 'dev', iface]);
  return RouteList.parse(JSON.parse(out)).map((route) => (route.dst.includes('/') ? route.dst : `${route.dst}/32`));
}

/** Exactly these routes through the interface (routes the kernel adds for an address's own prefix are left alone). */
export async function routeSync(
  commands: Commands,
  iface: string,
  wanted: readonly string[],
  keep: readonly string[] = [],
): Promise<void> {
  for (const cidr of wanted) await commands.run('ip', ['route', 'replace', cidr, 'dev', iface]);
  for (const cidr of await routeList(commands, iface))
    if (!wanted.includes(cidr) && !keep.includes(cidr)) await commands.run('ip', ['route', 'del', cidr, 'dev', iface]);
}
