import { type ChildProcess, execFile, spawn } from 'node:child_process';

const SERVER = `require('node:net').createServer((s) => s.end('pong')).listen(Number(process.argv[2]), process.argv[1], () => console.log('listening'));`;
const CLIENT = `const s = require('node:net').connect(Number(process.argv[2]), process.argv[1]); let got = '';
s.setTimeout(Number(process.argv[3]), () => { console.log('timeout'); process.exit(1); });
s.on('data', (d) => { got += d; }); s.on('end', () => process.exit(got === 'pong' ? 0 : 1));
s.on('error', (e) => { console.log(e.code); process.exit(1); });`;

/** A TCP server in a namespace that answers "pong"; resolves once it listens. */
export async function tcpServer(ns: string, address: string, port: number): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, address, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the test TCP server exited (${code})`)));
  });
  return child;
}

/** Connects from a namespace; true when "pong" came back within timeoutMs. */
export function tcpPong(ns: string, address: string, port: number, timeoutMs = 5_000): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      'ip',
      ['netns', 'exec', ns, process.execPath, '-e', CLIENT, address, String(port), String(timeoutMs)],
      (error) => resolve(!error),
    );
  });
}
