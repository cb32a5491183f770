import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gatewaySettings } from '../src/gateway-cli.js';

describe('gateway flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gateway-cli-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'a-gateway-token-of-enough-length\n');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const good = {
    manager: 'https://manager.my-cluster.org:8443',
    tokenFile,
    endpoint: 'gateway.my-cluster.org:51820',
    dataDir: join(dir, 'data'),
    route: ['10.20.0.0/16'],
  };

  it('accepts a good command line, with the default listen port', () => {
    const settings = gatewaySettings(good);
    expect(settings).toMatchObject({
      token: 'a-gateway-token-of-enough-length',
      listenPort: 51820,
      routes: ['10.20.0.0/16'],
    });
    expect(settings.manager.toString()).toBe('https://manager.my-cluster.org:8443/');
  });

  it.each([
    [{ manager: undefined }, /^--manager is required: .*e\.g\. --manager https:\/\//],
    [{ manager: 'http://manager.my-cluster.org' }, /^--manager: must be an https:\/\/ URL/],
    [{ manager: 'not a url' }, /^--manager: "not a url" is not a URL/],
    [{ tokenFile: undefined }, /^--token-file is required/],
    [{ tokenFile: join(dir, 'missing') }, /^--token-file: cannot read .*missing \(ENOENT\)/],
    [{ endpoint: 'gateway.my-cluster.org' }, /^--endpoint: "gateway.my-cluster.org" is not HOST:PORT, e\.g\./],
    [{ endpoint: 'gateway.my-cluster.org:70000' }, /^--endpoint: .* is not HOST:PORT/],
    [{ listenPort: '0' }, /^--listen-port: "0" is not a UDP port, e\.g\. --listen-port 51820/],
    [{ dataDir: undefined }, /^--data-dir is required/],
    [{ route: ['10.20.0.0/33'] }, /^--route: "10.20.0.0\/33" is not an IPv4 network, e\.g\. --route 10\.20\.0\.0\/16/],
    [{ managerCaFile: join(dir, 'nope.pem') }, /^--manager-ca-file: cannot read .*\(ENOENT\)/],
  ])('refuses %o with a message naming the flag', (change, message) => {
    expect(() => gatewaySettings({ ...good, ...change })).toThrow(message);
  });

  it('refuses a token file that does not hold one token', () => {
    const short = join(dir, 'short');
    writeFileSync(short, 'short\n');
    expect(() => gatewaySettings({ ...good, tokenFile: short })).toThrow(/^--token-file: .* must hold one token/);
  });
});
