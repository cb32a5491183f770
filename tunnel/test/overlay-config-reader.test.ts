import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readOverlayConfig } from '../src/overlay-config-reader.js';

describe('readOverlayConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'overlay-config-'));
  const file = join(dir, 'overlay.json');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const overlay = {
    address: '100.96.0.2',
    network: '100.96.0.0/16',
    gatewayAddress: '100.96.0.1',
    gatewayPublicKey: 'cb0I9s2y2eJy8MLP9lE4MFoBW82Veu+LbwcIV+o1LGg=',
    gatewayEndpoint: 'gateway.my-cluster.org:51820',
    routes: ['100.96.0.0/16'],
    gcsAddress: '100.96.0.1:6379',
  };

  it('absent: no overlay and no problem (direct mode until the agent writes one)', () => {
    expect(readOverlayConfig(file)).toEqual({ raw: null, overlay: null, writtenAt: null, problem: null });
  });

  it('valid, and overlay null', () => {
    writeFileSync(file, JSON.stringify({ schemaVersion: 1, overlay, writtenAt: '2026-12-02T00:00:00.000Z' }));
    expect(readOverlayConfig(file)).toMatchObject({ overlay, writtenAt: '2026-12-02T00:00:00.000Z', problem: null });
    writeFileSync(file, JSON.stringify({ schemaVersion: 1, overlay: null, writtenAt: '2026-12-02T00:00:00.000Z' }));
    expect(readOverlayConfig(file)).toMatchObject({ overlay: null, problem: null });
  });

  it('invalid: no overlay, and a sentence naming the field', () => {
    const bad = { ...overlay, gatewayPublicKey: 'not-a-key' };
    writeFileSync(file, JSON.stringify({ schemaVersion: 1, overlay: bad, writtenAt: '2026-12-02T00:00:00.000Z' }));
    const read = readOverlayConfig(file);
    expect(read.overlay).toBeNull();
    expect(read.problem).toMatch(/is not valid \(overlay\.gatewayPublicKey: a WireGuard key is 44 base64/);
    writeFileSync(file, '{"schemaVersion": 1, "overl');
    expect(readOverlayConfig(file).problem).toMatch(/is not valid/);
  });
});
