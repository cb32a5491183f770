import { readFileSync } from 'node:fs';
import os from 'node:os';
import { LABEL } from './cluster.js';
import { run } from './util.js';

export interface Machine {
  date: string;
  nproc: number;
  cpuModel: string;
  memoryBytes: number;
  kernel: string;
  os: string;
  docker: string;
  node: string;
  /** 1-minute load average when the suite started and ended: above 0 on an idle machine means other work. */
  loadAverage: number[];
  /** Containers running that this bench did not make (other people's work on the same machine). */
  otherContainers: number;
}

export async function machine(): Promise<Machine> {
  const docker = await run('docker', ['version', '--format', '{{.Server.Version}}']);
  const others = await run('docker', ['ps', '--format', `{{.Label "${LABEL}"}}`]);
  let osName = os.type();
  try {
    osName = /^PRETTY_NAME="?([^"\n]+)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? osName;
  } catch {
    // keep the kernel's name
  }
  return {
    date: new Date().toISOString(),
    nproc: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    os: osName,
    docker: docker.stdout.trim(),
    node: process.version,
    loadAverage: [os.loadavg()[0] ?? 0],
    otherContainers: others.stdout
      ? others.stdout
          .replace(/\n$/, '')
          .split('\n')
          .filter((line) => line === '').length
      : 0,
  };
}
