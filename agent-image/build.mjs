// Bundles the agent into dist/ so the image needs no node_modules and no npm registry at build time.
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { build } from 'esbuild';
import pkg from './package.json' with { type: 'json' };

const here = new URL('.', import.meta.url).pathname;
mkdirSync(`${here}dist`, { recursive: true });
const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  sourcemap: false,
  legalComments: 'none',
  // Whitespace and syntax only: V8 keeps every script's source in the heap, and names stay for stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  define: { AGENT_VERSION: JSON.stringify(pkg.version) },
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
};
await build({ ...common, entryPoints: [`${here}src/main.ts`], outfile: `${here}dist/agent.mjs` });
// The controller's requests (live limits, drain) reach the running agent through this (AGENT_CONTROL_BUNDLE).
await build({ ...common, entryPoints: [`${here}src/control/control-main.ts`], outfile: `${here}dist/control.mjs` });
// The tunnel container runs the same image with the command `tunnel` (entrypoint.sh).
await build({ ...common, entryPoints: [`${here}../tunnel/src/tunnel-main.ts`], outfile: `${here}dist/tunnel.mjs` });
// Docker's HEALTHCHECK: a bash /dev/tcp probe, no Node.js start (see the script).
cpSync(`${here}src/healthcheck.sh`, `${here}dist/healthcheck.sh`);
rmSync(`${here}dist/healthcheck.mjs`, { force: true });
cpSync(`${here}src/ray/cluster_info.py`, `${here}dist/cluster_info.py`);
cpSync(`${here}src/ray/node_control.py`, `${here}dist/node_control.py`);
// Ray's sandboxes: the self-test, and the seccomp profile a person can copy out of the image (SANDBOX_SECCOMP_FILE).
cpSync(`${here}src/sandbox/sandbox_check.py`, `${here}dist/sandbox_check.py`);
mkdirSync(`${here}dist/sandbox`, { recursive: true });
cpSync(`${here}../protocol/src/seccomp-gvisor.json`, `${here}dist/sandbox/seccomp-gvisor.json`);
