// Bundles the `ray-agent` CLI into one file (dockerode, axios and the rest included).
import { build } from 'esbuild';

const here = new URL('.', import.meta.url).pathname;
await build({
  entryPoints: [`${here}src/cli/ray-agent.ts`],
  outfile: `${here}dist/ray-agent.cjs`,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
  // ssh2 (a dockerode dependency for ssh:// hosts) carries an optional native addon; leave it out of the bundle.
  external: ['cpu-features', './crypto/build/Release/sshcrypto.node'],
});
