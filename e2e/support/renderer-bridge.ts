import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVENT_CHANNELS, type EventChannel, type EventChannels, INVOKE_CHANNELS } from '@ray-agent/protocol';
import { type Browser, chromium, type Page } from 'playwright-core';
import { isAppPage } from '../../electron/src/app-url.js';
import { createIpcDispatch, type RayAgentService } from '../../electron/src/ipc-main.js';

/**
 * Runs the real window (renderer/dist) in headless Chromium with `window.rayAgent` bridged to a Node object that
 * implements RayAgentService. Calls go through the same checks as in Electron (electron/src/ipc-main.ts: sender,
 * channel, zod payload, {result}/{error} envelope), so any service can be plugged in, scripted or real.
 */
export const RENDERER_DIST = fileURLToPath(new URL('../../renderer/dist/', import.meta.url));

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export interface RendererSession {
  page: Page;
  browser: Browser;
  /** The page's own address (http://127.0.0.1:PORT/index.html). */
  url: string;
  /** main -> renderer events, as webContents.send would deliver them. */
  emit<E extends EventChannel>(channel: E, payload: EventChannels[E]): Promise<void>;
  /** Uncaught page errors; a healthy page has none. */
  pageErrors: string[];
  console: string[];
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.png': 'image/png',
};

/** A static file server for one folder, on loopback only. No CSP header: as under file:// the meta tag is the policy. */
export async function serveDirectory(dir: string): Promise<{ origin: string; close(): Promise<void> }> {
  const root = path.resolve(dir);
  const server: Server = createServer((request, response) => {
    void (async () => {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405).end();
        return;
      }
      const pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://127.0.0.1').pathname);
      const file = path.resolve(root, `.${pathname === '/' ? '/index.html' : pathname}`);
      if (!file.startsWith(`${root}${path.sep}`)) {
        response.writeHead(403).end();
        return;
      }
      try {
        const body = await readFile(file);
        response.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
        response.end(request.method === 'HEAD' ? undefined : body);
      } catch {
        response.writeHead(404).end();
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The page side of the bridge: what the preload exposes, built on the binding instead of ipcRenderer. */
function pageBridgeScript(): string {
  return `(() => {
  const invokeChannels = ${JSON.stringify(INVOKE_CHANNELS)};
  const eventChannels = ${JSON.stringify(EVENT_CHANNELS)};
  const listeners = new Map(eventChannels.map((channel) => [channel, new Set()]));
  const unwrap = (answer) => {
    if (answer && typeof answer === 'object' && 'result' in answer) return answer.result;
    const message = answer && answer.error && typeof answer.error.message === 'string' ? answer.error.message : 'The Ray Agent main process failed.';
    throw new Error(message);
  };
  const api = {};
  for (const channel of invokeChannels) {
    api[channel] = async (...args) => unwrap(await window.__rayAgentInvoke(channel, args));
  }
  api.on = (channel, listener) => {
    const set = listeners.get(channel);
    if (!set) throw new Error('Unknown event channel: ' + String(channel));
    set.add(listener);
    return () => { set.delete(listener); };
  };
  Object.defineProperty(window, 'rayAgent', { value: Object.freeze(api), enumerable: true });
  Object.defineProperty(window, '__rayAgentEmit', {
    value: (channel, payload) => { for (const listener of listeners.get(channel) ?? []) listener(payload); },
  });
})();`;
}

export async function openRenderer(
  service: RayAgentService,
  options: { dist?: string; colorScheme?: 'light' | 'dark'; viewport?: { width: number; height: number } } = {},
): Promise<RendererSession> {
  const server = await serveDirectory(options.dist ?? RENDERER_DIST);
  const appPage = `${server.origin}/index.html`;
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    const context = await browser.newContext({
      colorScheme: options.colorScheme ?? 'light',
      viewport: options.viewport ?? { width: 880, height: 900 },
    });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    const consoleLines: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));

    // The sender is the frame the call came from, checked exactly as main.ts checks event.senderFrame.url.
    const dispatch = createIpcDispatch(service, (event) => isAppPage(event.senderFrame?.url, appPage));
    await page.exposeBinding('__rayAgentInvoke', (source, channel: string, args: unknown[]) =>
      dispatch({ senderFrame: { url: source.frame.url() } }, channel, Array.isArray(args) ? args : []),
    );
    await page.addInitScript({ content: pageBridgeScript() });
    await page.goto(appPage);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });

    return {
      page,
      browser,
      url: appPage,
      async emit(channel, payload) {
        await page.evaluate(`window.__rayAgentEmit(${JSON.stringify(channel)}, ${JSON.stringify(payload)})`);
      },
      pageErrors,
      console: consoleLines,
      async close() {
        await browser.close();
        await server.close();
      },
    };
  } catch (error) {
    await browser.close();
    await server.close();
    throw error;
  }
}
