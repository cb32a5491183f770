import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { GcsAddress } from '../config/ray-head.js';

/**
 * Whether the head's GCS port accepts a TCP connection. Ray's raylet only gives up on a lost head after its
 * reconnect timeout; this lets the status say "reconnecting" as soon as the head stops answering.
 */
export async function probeGcs(gcs: GcsAddress, timeoutMs = 3_000): Promise<boolean> {
  return (await dialGcs(gcs, timeoutMs)) === undefined;
}

/** Dials the GCS port once: undefined when it accepts, else why not (for the person: "connect ECONNREFUSED …"). */
export function dialGcs(gcs: GcsAddress, timeoutMs = 3_000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: gcs.host.replace(/^\[|\]$/g, ''), port: gcs.port });
    const done = (problem: string | undefined) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(timeoutMs, () => done(`no answer within ${timeoutMs / 1000} s`));
    socket.once('connect', () => done(undefined));
    socket.once('error', (error) => done(error.message));
  });
}

/**
 * Whether this network namespace holds an established TCP connection to `port` (the raylet's and workers' gRPC
 * channels to the GCS), from /proc/net/tcp and tcp6: reading two small files costs less than dialling the head.
 */
export function gcsConnected(port: number, procNet = '/proc/net'): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`${procNet}/${file}`, 'latin1');
    } catch {
      continue; // no IPv6 in this namespace
    }
    // Columns: sl local_address rem_address st ...; state 01 is ESTABLISHED.
    for (const line of text.split('\n')) {
      const [, , remote, state] = line.trim().split(/\s+/);
      if (state === '01' && remote?.endsWith(`:${hexPort}`)) return true;
    }
  }
  return false;
}
