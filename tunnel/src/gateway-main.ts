import { runGatewayCli } from './gateway-cli.js';

await runGatewayCli(process.argv.slice(2));
// A failed start leaves nothing to wait for; stop the process even if a handle (a timer, a socket) is still open.
if (process.exitCode) process.exit();
