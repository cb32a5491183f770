import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { processCpuSeconds, processMemory } from '../../lib/procfs.js';
import { median } from '../../lib/stats.js';
import type { SuiteContext } from '../../lib/suite.js';
import { exited, log, run, sleep } from '../../lib/util.js';
import type { BoincData, BoincSettings } from './schema.js';

const CC_CONFIG = `<cc_config>
  <options>
    <no_info_fetch>1</no_info_fetch>
    <dont_contact_ref_site>1</dont_contact_ref_site>
    <skip_cpu_benchmarks>1</skip_cpu_benchmarks>
    <no_gpus>1</no_gpus>
  </options>
</cc_config>
`;

/** Lines of a /proc/net table, less its header. */
function sockets(pid: number, table: string): number {
  try {
    return readFileSync(`/proc/${pid}/net/${table}`, 'utf8').trim().split('\n').length - 1;
  } catch {
    return 0;
  }
}

/** Installs Debian's boinc-client when the profile asks for it; the outer half runs this, with the network. */
export async function installBoinc(settings: BoincSettings): Promise<void> {
  if (!settings.install || (await run('boinc', ['--version'])).code === 0) return;
  log('installing boinc-client (Debian)');
  await run('apt-get', ['update', '-qq'], { timeoutMs: 300_000 });
  await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'boinc-client'], {
    timeoutMs: 600_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/**
 * Debian's BOINC client idle, as a reference for what a volunteer-computing client costs a person. It is attached
 * to no project, and it runs in a network namespace of its own with nothing but a loopback interface that is not
 * even up (`unshare --net`), so it cannot reach anything; its options also turn off every fetch it would try
 * (project list, version check, reference-site probe), the GUI RPC socket and the first-run CPU benchmarks.
 */
export async function runBoinc(context: SuiteContext, settings: BoincSettings): Promise<BoincData> {
  const figures: BoincData = { skipped: null, version: null, command: null, isolation: null, reps: [] };
  const version = await run('boinc', ['--version']);
  if (version.code !== 0) {
    figures.skipped = 'boinc-client is not installed (apt-get install boinc-client)';
    return figures;
  }
  figures.version = version.stdout.trim();
  const flags = ['--no_gui_rpc', '--no_info_fetch', '--skip_cpu_benchmarks', '--no_gpus', '--suppress_net_info'];
  figures.command = `unshare --net -- boinc --dir DIR ${flags.join(' ')}`;
  for (let rep = 0; rep < settings.reps; rep++) {
    const dir = join(context.tmp, `boinc-${rep}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'cc_config.xml'), CC_CONFIG);
    // unshare execs boinc in place: the child's PID is the client's.
    const child = spawn('unshare', ['--net', '--', 'boinc', '--dir', dir, ...flags], {
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    const pid = child.pid;
    if (!pid) throw new Error('boinc did not start');
    try {
      await sleep(settings.settleSeconds * 1000);
      const cpu0 = processCpuSeconds(pid);
      const t0 = performance.now();
      const rss: number[] = [];
      const pss: number[] = [];
      for (let i = 0; i < 6; i++) {
        await sleep((settings.seconds * 1000) / 6);
        const memory = processMemory(pid);
        if (memory) {
          rss.push(memory.rss);
          pss.push(memory.pss);
        }
      }
      const cpu1 = processCpuSeconds(pid);
      if (cpu0 === undefined || cpu1 === undefined) throw new Error(`boinc exited early (see ${dir})`);
      const seconds = (performance.now() - t0) / 1000;
      figures.reps.push({
        seconds,
        rssBytes: median(rss),
        pssBytes: median(pss),
        cpuSecondsPerMinute: ((cpu1 - cpu0) / seconds) * 60,
      });
      const interfaces = readFileSync(`/proc/${pid}/net/dev`, 'utf8')
        .split('\n')
        .slice(2)
        .map((line) => line.split(':')[0]?.trim() ?? '')
        .filter(Boolean);
      figures.isolation = {
        interfaces,
        tcpSockets: sockets(pid, 'tcp') + sockets(pid, 'tcp6'),
        udpSockets: sockets(pid, 'udp') + sockets(pid, 'udp6'),
      };
      log(
        `boinc rep ${rep + 1}: RSS ${(median(rss) / 2 ** 20).toFixed(1)} MiB, ${figures.reps.at(-1)?.cpuSecondsPerMinute.toFixed(3)} CPU s/min`,
      );
    } finally {
      child.kill('SIGTERM');
      await Promise.race([exited(child), sleep(10_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }
  return figures;
}
