import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseWgDump } from '../src/wg.js';

// fixtures/wg-show-dump.txt is `wg show IFACE dump` of wireguard-go v0.0.20220316 with wireguard-tools 1.0.20210914,
// throwaway keys of an interface deleted since: one peer with a keepalive and no endpoint (how the gateway sees a
// provider before its first packet), one with an endpoint and two networks. The namespace test parses live output.
const fixture = readFileSync(join(import.meta.dirname, 'fixtures', 'wg-show-dump.txt'), 'utf8');

describe('parseWgDump', () => {
  it('reads the interface line and every peer of real output', () => {
    const dump = parseWgDump(fixture);
    expect(dump.publicKey).toBe('cb0I9s2y2eJy8MLP9lE4MFoBW82Veu+LbwcIV+o1LGg=');
    expect(dump.listenPort).toBe(51820);
    expect(dump.peers).toEqual([
      {
        publicKey: 'Blpie/fXDW8+xWNsjpfSJD3cb3T+gh11d/i2eS1tK2E=',
        endpoint: null,
        allowedIps: ['100.96.0.2/32'],
        latestHandshake: 0,
        rxBytes: 0,
        txBytes: 0,
        persistentKeepalive: 10,
      },
      {
        publicKey: 'B1JlxWuBkMpgDqBVQrpnPvoa5V84XZ39B5fDTLEMnD4=',
        endpoint: '10.251.9.2:40000',
        allowedIps: ['100.96.0.0/16', '10.20.0.0/16'],
        latestHandshake: 0,
        rxBytes: 0,
        txBytes: 0,
        persistentKeepalive: 0,
      },
    ]);
  });

  it('reads handshake time and byte counters', () => {
    const line =
      'Blpie/fXDW8+xWNsjpfSJD3cb3T+gh11d/i2eS1tK2E=\t(none)\t10.251.1.2:39615\t100.96.0.2/32\t1796173008\t1276\t1480\t10';
    const dump = parseWgDump(`${fixture.split('\n')[0]}\n${line}\n`);
    expect(dump.peers[0]).toMatchObject({
      latestHandshake: 1796173008,
      rxBytes: 1276,
      txBytes: 1480,
      endpoint: '10.251.1.2:39615',
    });
  });

  it('an interface without peers, and output of another shape, are told apart', () => {
    expect(parseWgDump('(none)\t(none)\t50842\toff\n')).toEqual({ publicKey: null, listenPort: 50842, peers: [] });
    expect(() => parseWgDump('interface: raywg0\n')).toThrow(/interface line/);
    expect(() => parseWgDump(`${fixture.split('\n')[0]}\nkey\tonly three\n`)).toThrow(/peer line/);
  });
});
