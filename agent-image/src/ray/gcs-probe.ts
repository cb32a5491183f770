import { connect } from 'node:net';
import type { GcsAddress } from '../config/ray-head.js';

/**
 * Whether the head's GCS port accepts a TCP connection. Ray's raylet only gives up on a lost head after its
 * reconnect timeout; this lets the status say "reconnecting" as soon as the head stops answering.
 */
export function probeGcs(gcs: GcsAddress, timeoutMs = 3_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: gcs.host.replace(/^\[|\]$/g, ''), port: gcs.port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
