// Bundles the window into renderer/dist/: index.html, app.js (one IIFE, no inline code for the CSP) and app.css.
import { copyFileSync, mkdirSync } from 'node:fs';
import { build } from 'esbuild';

const src = new URL('./src/', import.meta.url);
const dist = new URL('./dist/', import.meta.url);
mkdirSync(dist, { recursive: true });

await build({
  entryPoints: [new URL('main.ts', src).pathname],
  outfile: new URL('app.js', dist).pathname,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  // Electron 45 is Chromium 140; Debian's chromium for the tests is as new or newer.
  target: 'chrome120',
  sourcemap: true,
  logLevel: 'warning',
});
copyFileSync(new URL('index.html', src), new URL('index.html', dist));
copyFileSync(new URL('app.css', src), new URL('app.css', dist));
