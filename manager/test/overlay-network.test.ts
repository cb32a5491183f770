import { DEFAULT_OVERLAY_NETWORK } from '@ray-agent/protocol';
import { describe, expect, it } from 'vitest';
import {
  ipToNumber,
  isProviderAddress,
  lowestFreeAddress,
  numberToIp,
  parseOverlayNetwork,
  providerCapacity,
} from '../src/overlay-network.js';
import { overlayNetwork } from './helpers.js';

describe('overlay network arithmetic', () => {
  it('puts the gateway on the first host of the default network', () => {
    const network = overlayNetwork(DEFAULT_OVERLAY_NETWORK);
    expect(network).toMatchObject({ cidr: '100.96.0.0/16', prefix: 16, gatewayAddress: '100.96.0.1' });
    expect(providerCapacity(network)).toBe(65_533);
  });

  it('converts addresses both ways, including the top of the range', () => {
    for (const address of ['0.0.0.0', '100.96.0.1', '255.255.255.255', '10.1.2.3']) {
      expect(numberToIp(ipToNumber(address))).toBe(address);
    }
    expect(ipToNumber('255.255.255.255')).toBe(2 ** 32 - 1);
  });

  it('refuses a network with host bits set, naming the network meant, and one too small', () => {
    expect(parseOverlayNetwork('100.96.3.4/16')).toEqual({
      problem: '100.96.3.4/16 has host bits set; the network is 100.96.0.0/16',
    });
    expect(parseOverlayNetwork('100.96.0.0/31')).toEqual({
      problem: 'a /31 has no room for the gateway and a provider (at most /30)',
    });
    expect(providerCapacity(overlayNetwork('100.96.0.0/30'))).toBe(1);
  });

  it('hands out the lowest free host, never the network, gateway or broadcast address', () => {
    const network = overlayNetwork('100.96.0.0/29');
    expect(lowestFreeAddress(network, [])).toBe('100.96.0.2');
    expect(lowestFreeAddress(network, ['100.96.0.2', '100.96.0.4'])).toBe('100.96.0.3');
    const all = ['100.96.0.2', '100.96.0.3', '100.96.0.4', '100.96.0.5', '100.96.0.6'];
    expect(lowestFreeAddress(network, all)).toBeNull();
    for (const address of ['100.96.0.0', '100.96.0.1', '100.96.0.7', '100.96.0.8', '100.95.255.255']) {
      expect(isProviderAddress(network, address), address).toBe(false);
    }
    for (const address of all) expect(isProviderAddress(network, address), address).toBe(true);
  });
});
