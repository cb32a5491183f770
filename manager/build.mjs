// Bundles the manager CLI into one ESM file. Everything is bundled except better-sqlite3, whose native addon
// is installed beside the bundle (node_modules in development, manager/image-deps in the container image).
import { chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const outfile = fileURLToPath(new URL('./dist/manager.mjs', import.meta.url));

await build({
  entryPoints: [fileURLToPath(new URL('./src/cli.ts', import.meta.url))],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['better-sqlite3'],
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire } from 'module'; const require = createRequire(import.meta.url);",
  },
  legalComments: 'none',
  sourcemap: false,
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
process.stdout.write(`built ${outfile}\n`);
