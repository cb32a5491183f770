/**
 * `leaveCluster` in a process of its own that kills itself with SIGKILL (kill -9: no cleanup, no flush) the instant
 * it logs the `nth` line matching `killAt`, so a test can run leave again over exactly that state.
 * Input: LEAVE_CHILD (JSON of name, settingsDir, managerUrl, managerCaPem, image, killAt, nth). Output: its log
 * lines, then the report as `REPORT <json>` if it was not killed.
 */
import { leaveCluster } from '../../src/app/leave.js';
import { TokenVault } from '../../src/app/token-vault.js';
import { AgentContainer } from '../../src/container/agent-container.js';
import { resolveDockerEndpointFromProcess } from '../../src/engine/docker-endpoint.js';
import { createDockerode } from '../../src/engine/docker-engine.js';
import { testKeychainCodec } from './test-keychain-codec.js';

const input = JSON.parse(process.env.LEAVE_CHILD ?? '{}') as {
  name: string;
  settingsDir: string;
  managerUrl: string;
  managerCaPem: string;
  image: string;
  killAt: string;
  nth: number;
};
const killAt = new RegExp(input.killAt);
let seen = 0;
const docker = createDockerode(resolveDockerEndpointFromProcess());
const report = await leaveCluster({
  docker,
  agent: new AgentContainer(docker, { name: input.name }),
  settingsDir: input.settingsDir,
  vault: new TokenVault(input.settingsDir, testKeychainCodec()),
  managerUrl: input.managerUrl,
  managerCaPem: input.managerCaPem,
  image: input.image,
  log: (line) => {
    process.stdout.write(`${line}\n`);
    if (killAt.test(line) && ++seen === input.nth) process.kill(process.pid, 'SIGKILL');
  },
});
process.stdout.write(`REPORT ${JSON.stringify(report)}\n`);
