/**
 * By hand, not a test: the bundled agent (dist/agent.mjs) idle against the real manager over TLS, with Ray and
 * python3 stood in for (as in agent-process.ts), and its anonymous memory and CPU over a window.
 * Usage: npx tsx agent-image/test/measure-idle.ts SECONDS [poll] [-- node flags...]
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { buildServer } from '@ray-agent/manager/server';
import { Store } from '@ray-agent/manager/store';
import pino from 'pino';
import { fakeGcs, freePort, getLocal } from './agent-process.js';
import { makeTls, tempDirForSuite } from './helpers.js';

const [secondsArg = '60', mode = 'idle', ...rest] = process.argv.slice(2);
const flags = rest[0] === '--' ? rest.slice(1) : rest;
const { dir, remove } = tempDirForSuite('ra-h5-measure-');
const tls = makeTls(dir);
const store = new Store(join(dir, 'manager.db'));
const { token } = store.createEnrollmentToken({ label: 'measure' });
const manager = buildServer({
  store,
  tls: { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) },
  heartbeatIntervalSeconds: 10,
  logger: pino({ level: 'silent' }),
});
await manager.listen({ host: '127.0.0.1', port: 0 });
const gcs = await fakeGcs();
const ray = join(dir, 'fake-ray');
const python = join(dir, 'fake-python');
writeFileSync(
  ray,
  `#!/bin/sh\nif [ "$1" = start ]; then echo 'Ray runtime started.'; trap 'exit 1' TERM; while :; do sleep 1000 & wait $!; done; fi\n`,
);
writeFileSync(
  python,
  `#!/bin/sh\nif [ "$1" = -c ]; then echo '2.58.0 3.11.2'; exit 0; fi\necho '{"status":"ok","rayVersion":"2.58.0","pythonVersion":"3.11.2","clusterRayVersion":"2.58.0","clusterPythonVersion":"3.11.2","clusterId":"00"}'\n`,
);
chmodSync(ray, 0o755);
chmodSync(python, 0o755);
mkdirSync(join(dir, 'state'));
writeFileSync(join(dir, 'token'), token);
const statusPort = await freePort();
// Its own PID namespace and /proc, as in its container: the task counter reads every process's title.
const bundle = process.env.AGENT_BUNDLE ?? new URL('../dist/agent.mjs', import.meta.url).pathname;
const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, ...flags, bundle], {
  env: {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    STATUS_HOST: '127.0.0.1',
    STATUS_PORT: String(statusPort),
    RAY_AGENT_RAY_BIN: ray,
    RAY_AGENT_PYTHON: python,
    RAY_HEAD: `127.0.0.1:${gcs.port}`,
    MANAGER_URL: `https://127.0.0.1:${(manager.server.address() as AddressInfo).port}/api/register`,
    MANAGER_CA_FILE: tls.caFile,
    AGENT_TOKEN_FILE: join(dir, 'token'),
    STATE_DIR: join(dir, 'state'),
    CPU_LIMIT: '1',
    MEMORY_LIMIT: '2g',
    NODE_IP_ADDRESS: '127.0.0.1',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});
await new Promise((r) => setTimeout(r, 1_000));
// unshare forks: the agent is its child.
const pid = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(' ')[0]);
const cpuTicks = () => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (100/s)
};
const anonKiB = () => Number(/Anonymous:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1]);
const rssKiB = () => Number(/Rss:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1]);
for (let i = 0; i < 300; i += 1) {
  const s = await getLocal(statusPort, '/healthz').catch(() => undefined);
  if (s?.body.includes('contributing')) break;
  await new Promise((r) => setTimeout(r, 100));
}
await new Promise((r) => setTimeout(r, 15_000)); // settle: start-up garbage collected, first heartbeats sent
const seconds = Number(secondsArg);
const before = cpuTicks();
const poller =
  mode === 'poll' ? setInterval(() => void getLocal(statusPort, '/status').catch(() => {}), 2_000) : undefined;
let maxAnon = 0;
for (let t = 0; t < seconds; t += 1) {
  await new Promise((r) => setTimeout(r, 1_000));
  maxAnon = Math.max(maxAnon, anonKiB());
}
clearInterval(poller);
const cpu = (cpuTicks() - before) / 100;
const state = JSON.parse((await getLocal(statusPort, '/healthz')).body).state;
const figures = JSON.stringify({
  mode,
  state,
  flags: flags.join(' '),
  seconds,
  cpuSeconds: cpu,
  cpuPercentOfCore: Math.round((cpu / seconds) * 100 * 1000) / 1000,
  anonMiB: Math.round((anonKiB() / 1024) * 10) / 10,
  maxAnonMiB: Math.round((maxAnon / 1024) * 10) / 10,
  rssMiB: Math.round((rssKiB() / 1024) * 10) / 10,
});
process.stdout.write(`${figures}\n`);
child.kill('SIGTERM');
await new Promise((r) => child.on('exit', r));
await manager.close();
store.close();
gcs.server.close();
remove();
process.exit(0);
