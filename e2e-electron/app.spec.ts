import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { _electron, type ElectronApplication, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The real app under real Electron (hosted CI only): the bundled main process, preload and window, with a fresh
 * profile. RAY_AGENT_E2E exposes a read-only view of the tray model (Electron has no API to read a tray's menu).
 */
const root = fileURLToPath(new URL('..', import.meta.url));
const userData = mkdtempSync(path.join(tmpdir(), 'ray-agent-e2e-'));
let app: ElectronApplication;
let window: Page;

type TrayModel = { icon: string; items: Array<{ id: string; label: string; checked?: boolean }> };
const trayModel = () =>
  app.evaluate(() =>
    (globalThis as unknown as { rayAgentE2E: { trayModel(): TrayModel | null } }).rayAgentE2E.trayModel(),
  );

beforeAll(async () => {
  app = await _electron.launch({
    args: [path.join(root, 'electron/dist/main.cjs')],
    cwd: root,
    env: { ...process.env, RAY_AGENT_E2E: '1', RAY_AGENT_USER_DATA: userData, RAY_AGENT_TRAY: '1' },
  });
  window = await app.firstWindow();
  await window.waitForSelector('body[data-ready="true"]');
});

afterAll(async () => {
  await app?.close();
  rmSync(userData, { recursive: true, force: true });
});

describe('Ray Agent under Electron', () => {
  it('the window is isolated and sandboxed, with only window.rayAgent exposed', async () => {
    const preferences = await app.evaluate(({ BrowserWindow }) =>
      BrowserWindow.getAllWindows()[0]?.webContents.getLastWebPreferences(),
    );
    expect(preferences).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
    });
    expect(await window.evaluate('typeof require')).toBe('undefined');
    expect(await window.evaluate('typeof process')).toBe('undefined');
    expect(await window.evaluate('Object.keys(window.rayAgent).length')).toBe(10);
  });

  it('the tray exists and shows the status lines and actions', async () => {
    const model = await trayModel();
    expect(model?.items.map((item) => item.id)).toEqual(
      expect.arrayContaining(['headline', 'contribute', 'open', 'quit']),
    );
  });

  it('toggling "Contribute compute" in the window reaches the main process and the tray', async () => {
    await window.locator('label.switch').click();
    await expect
      .poll(() => window.evaluate(`window.rayAgent['settings:get']().then((settings) => settings.contribute)`))
      .toBe(true);
    await expect
      .poll(async () => (await trayModel())?.items.find((item) => item.id === 'contribute')?.checked)
      .toBe(true);
  });
});
