import { STATE_DIR } from '@ray-agent/protocol';
import { AGENT_IMAGE } from './cluster.js';
import { mustRun } from './run.js';

/** One file of an agent's state directory, bytes and all. */
export interface StateFile {
  name: string;
  bytes: Buffer;
  mode: number;
  ino: number;
  mtimeMs: number;
}

// Run by the image's own Node as the agent's user, so the test reads the files exactly as the agent can. Files
// only: the agent's control socket (and a folder) is no state and cannot be read as bytes.
const LIST = `const fs = require('fs'); const d = process.argv[1];
process.stdout.write(JSON.stringify(fs.readdirSync(d).sort().filter((name) => fs.statSync(d + '/' + name).isFile()).map((name) => {
  const s = fs.statSync(d + '/' + name);
  return { name, b64: fs.readFileSync(d + '/' + name).toString('base64'), mode: s.mode & 0o777, ino: s.ino, mtimeMs: s.mtimeMs };
})));`;
const SEED = `let text = ''; process.stdin.on('data', (c) => { text += c; }).on('end', () => {
  const fs = require('fs');
  for (const [name, b64] of Object.entries(JSON.parse(text)))
    fs.writeFileSync(process.argv[1] + '/' + name, Buffer.from(b64, 'base64'), { mode: 0o600 });
});`;

function parse(text: string): StateFile[] {
  return (JSON.parse(text) as Array<Omit<StateFile, 'bytes'> & { b64: string }>).map(({ b64, ...file }) => ({
    ...file,
    bytes: Buffer.from(b64, 'base64'),
  }));
}

/** The state directory of a running agent container. */
export async function stateFilesOf(container: string): Promise<StateFile[]> {
  return parse(await mustRun('docker', ['exec', container, 'node', '-e', LIST, STATE_DIR]));
}

/** The state volume read by a throwaway container (works whether or not the agent still runs). */
export async function stateFilesIn(volume: string): Promise<StateFile[]> {
  return parse(
    await mustRun('docker', [
      'run',
      '--rm',
      '--network',
      'none',
      '-v',
      `${volume}:${STATE_DIR}:ro`,
      '--entrypoint',
      'node',
      AGENT_IMAGE,
      '-e',
      LIST,
      STATE_DIR,
    ]),
  );
}

/** Creates the volume (owned by the agent's user, as the image's directory is) holding these files, mode 0600. */
export async function seedStateVolume(volume: string, files: Record<string, Buffer | string>): Promise<void> {
  const payload = Object.fromEntries(
    Object.entries(files).map(([name, content]) => [name, Buffer.from(content).toString('base64')]),
  );
  await mustRun(
    'docker',
    [
      'run',
      '--rm',
      '-i',
      '--network',
      'none',
      '-v',
      `${volume}:${STATE_DIR}`,
      '--entrypoint',
      'node',
      AGENT_IMAGE,
      '-e',
      SEED,
      STATE_DIR,
    ],
    { input: JSON.stringify(payload) },
  );
}
