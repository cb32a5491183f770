// Bundles the main process and the preload to CommonJS for Electron. Everything but `electron` is bundled: the
// packaged app ships no node_modules, and a sandboxed preload may require nothing but `electron`.
import { build } from 'esbuild';

const here = new URL('.', import.meta.url);

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  // Electron 45 runs Node 22 in the main process and Chromium 140 in the preload.
  target: 'node22',
  sourcemap: true,
  external: ['electron'],
  // dockerode's ssh2 requires optional native modules inside try/catch; they are not used (no SSH engines).
  loader: { '.node': 'empty' },
  logLevel: 'warning',
  absWorkingDir: new URL('..', here).pathname,
};

await Promise.all([
  build({ ...common, entryPoints: ['electron/src/main.ts'], outfile: 'electron/dist/main.cjs' }),
  build({ ...common, entryPoints: ['electron/src/preload.ts'], outfile: 'electron/dist/preload.cjs' }),
]);
