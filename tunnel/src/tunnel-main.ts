import { readlinkSync } from 'node:fs';
import {
  OVERLAY_CONFIG_FILE,
  OVERLAY_INTERFACE,
  TUNNEL_PRIVATE_KEY_FILE,
  TUNNEL_PUBLIC_KEY_FILE,
  TUNNEL_STATUS_FILE,
} from '@ray-agent/protocol';
import { Commands } from './commands.js';
import { createLogger } from './log.js';
import { ProviderTunnelLoop } from './provider-tunnel-loop.js';

// The provider's tunnel container (`entrypoint.sh tunnel`): runs as root with NET_ADMIN and /dev/net/tun.
const logger = createLogger('ray-agent-tunnel');
const loop = new ProviderTunnelLoop({
  privateKeyFile: TUNNEL_PRIVATE_KEY_FILE,
  publicKeyFile: TUNNEL_PUBLIC_KEY_FILE,
  statusFile: TUNNEL_STATUS_FILE,
  overlayConfigFile: OVERLAY_CONFIG_FILE,
  iface: OVERLAY_INTERFACE,
  commands: new Commands(),
  networkNamespace: readlinkSync('/proc/self/ns/net'),
  logger,
});
try {
  loop.start();
} catch (error) {
  logger.fatal({ err: { message: (error as Error).message } }, 'cannot keep the WireGuard key pair');
  process.exit(1);
}
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'removing the tunnel');
    loop.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: { message: (error as Error).message } }, 'tunnel removal failed');
        process.exit(1);
      },
    );
  });
