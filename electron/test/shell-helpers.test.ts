import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isAppPage } from '../src/app-url.js';
import { autostartDir, autostartEntry, setLinuxAutostart } from '../src/linux-autostart.js';
import { trayIconFile } from '../src/tray-icons.js';

const APP_PAGE = 'file:///opt/Ray%20Agent/resources/app.asar/renderer/dist/index.html';

describe('isAppPage: the only page allowed to navigate to and to call IPC', () => {
  it('accepts the app page, with or without a fragment or query', () => {
    expect(isAppPage(APP_PAGE, APP_PAGE)).toBe(true);
    expect(isAppPage(`${APP_PAGE}#settings`, APP_PAGE)).toBe(true);
    expect(isAppPage(`${APP_PAGE}?tab=logs`, APP_PAGE)).toBe(true);
  });
  it('refuses other files, schemes, hosts and garbage', () => {
    for (const url of [
      'file:///opt/Ray%20Agent/resources/app.asar/renderer/dist/other.html',
      'file:///etc/passwd',
      'file://evil.example/opt/Ray%20Agent/resources/app.asar/renderer/dist/index.html',
      'https://evil.example/opt/Ray%20Agent/resources/app.asar/renderer/dist/index.html',
      'about:blank',
      'not a url',
      '',
      null,
      undefined,
    ]) {
      expect(isAppPage(url, APP_PAGE)).toBe(false);
    }
  });
});

describe('Linux autostart entry (XDG Autostart; Electron has no login items on Linux)', () => {
  it('quotes the command as the Desktop Entry spec says', () => {
    const entry = autostartEntry(['/opt/Ray Agent/ray-agent', '--hidden']);
    expect(entry).toContain('Exec="/opt/Ray Agent/ray-agent" --hidden\n');
    expect(autostartEntry(['/home/a/$HOME`x"y\\z.AppImage'])).toContain('Exec="/home/a/\\$HOME\\`x\\"y\\\\z.AppImage"');
    expect(entry.startsWith('[Desktop Entry]\nType=Application\nName=Ray Agent\n')).toBe(true);
  });

  it('writes and removes the file in $XDG_CONFIG_HOME/autostart', () => {
    const home = mkdtempSync(path.join(tmpdir(), 'autostart-'));
    try {
      const dir = autostartDir({ XDG_CONFIG_HOME: path.join(home, 'cfg') }, home);
      expect(dir).toBe(path.join(home, 'cfg', 'autostart'));
      expect(autostartDir({}, home)).toBe(path.join(home, '.config', 'autostart'));
      setLinuxAutostart(true, dir, ['/usr/bin/ray-agent', '--hidden']);
      const file = path.join(dir, 'io.ray-agent.tray.desktop');
      expect(readFileSync(file, 'utf8')).toContain('Exec=/usr/bin/ray-agent --hidden');
      setLinuxAutostart(false, dir, []);
      expect(() => statSync(file)).toThrow();
      setLinuxAutostart(false, dir, []);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe('tray icons', () => {
  const assets = fileURLToPath(new URL('../assets/', import.meta.url));
  const pngSize = (file: string) => {
    const bytes = readFileSync(file);
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
  };

  it('every state has a 16 px icon and a 32 px @2x icon, coloured and macOS template, as real PNGs', () => {
    for (const icon of ['off', 'starting', 'contributing', 'attention'] as const) {
      for (const platform of ['darwin', 'linux', 'win32'] as const) {
        const file = path.join(assets, trayIconFile(icon, platform));
        expect(pngSize(file)).toEqual([16, 16]);
        expect(pngSize(file.replace(/\.png$/, '@2x.png'))).toEqual([32, 32]);
      }
      expect(trayIconFile(icon, 'darwin')).toBe(`tray-${icon}Template.png`);
    }
    expect(pngSize(path.join(assets, 'icon.png'))).toEqual([512, 512]);
  });
});
