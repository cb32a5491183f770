// The provider's tunnel loop as its own process, as in the tunnel container, but on files in a test directory and
// driving an interface in a test network namespace: argv = NETNS IFACE DIR.
import { join } from 'node:path';
import { Commands } from '../../src/commands.js';
import { createLogger } from '../../src/log.js';
import { ProviderTunnelLoop } from '../../src/provider-tunnel-loop.js';

const [netns, iface, dir] = process.argv.slice(2) as [string, string, string];
const loop = new ProviderTunnelLoop({
  privateKeyFile: join(dir, 'private.key'),
  publicKeyFile: join(dir, 'public.key'),
  statusFile: join(dir, 'status.json'),
  overlayConfigFile: join(dir, 'overlay.json'),
  iface,
  commands: new Commands(netns),
  networkNamespace: null,
  logger: createLogger('ray-agent-tunnel', 'debug'),
  tickMs: 250,
});
loop.start();
process.once('SIGTERM', () => {
  loop.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
