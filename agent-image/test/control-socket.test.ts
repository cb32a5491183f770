import { execFile } from 'node:child_process';
import { lstatSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { AgentControlRequest } from '@ray-agent/protocol';
import { build } from 'esbuild';
import { describe, expect, it, onTestFinished } from 'vitest';
import { sendControl } from '../src/control/control-client.js';
import { controlSocketPath, parseControlRequest, serveControl } from '../src/control/control-socket.js';
import { tempDir } from './helpers.js';

async function serving(stateDir: string, seen: AgentControlRequest[] = []) {
  const server = await serveControl(controlSocketPath(stateDir), async (request) => {
    seen.push(request);
    return request.command === 'drain'
      ? { ok: true, message: 'drained', tasksLeft: 0 }
      : { ok: true, message: 'resized', rayCpus: Math.floor(request.cpus), resizedLive: true };
  });
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return seen;
}

describe('parseControlRequest', () => {
  it.each([
    ['{"command":"limits","cpus":0,"memoryBytes":1,"throttleCpus":null}', /^cpus: .*e\.g\. \{"command"/],
    ['{"command":"limits","cpus":2,"memoryBytes":1.5,"throttleCpus":null}', /^memoryBytes: /],
    ['{"command":"drain","deadlineSeconds":-1,"reason":"pause"}', /^deadlineSeconds: /],
    ['{"command":"drain","deadlineSeconds":60,"reason":"bored"}', /^reason: /],
    ['{"command":"reboot"}', /^command: /],
    ['not json', /not JSON/],
  ])('%s is refused naming the field', (text, message) => {
    const parsed = parseControlRequest(text);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.reply.message).toMatch(message);
  });
});

describe('the control socket', () => {
  it('carries a request to the handler and its reply back; the socket is 0600', async () => {
    const dir = tempDir('agent-ctl-');
    const seen = await serving(dir);
    const reply = await sendControl('{"command":"limits","cpus":2.5,"memoryBytes":4294967296,"throttleCpus":0.5}', dir);
    expect(reply).toEqual({ ok: true, message: 'resized', rayCpus: 2, resizedLive: true });
    expect(seen).toEqual([{ command: 'limits', cpus: 2.5, memoryBytes: 4294967296, throttleCpus: 0.5 }]);
    expect(lstatSync(controlSocketPath(dir)).mode & 0o777).toBe(0o600);
  });

  it('a bad request never reaches the handler', async () => {
    const dir = tempDir('agent-ctl-bad-');
    const seen = await serving(dir);
    const reply = await sendControl('{"command":"drain","deadlineSeconds":60}', dir);
    expect(reply.ok).toBe(false);
    expect(reply.message).toMatch(/^reason: /);
    expect(seen).toEqual([]);
  });

  it('replaces a socket left by a previous run (kill -9) and keeps a regular file it did not make', async () => {
    const dir = tempDir('agent-ctl-stale-');
    const stale = createServer();
    await new Promise<void>((resolve) => stale.listen(controlSocketPath(dir), resolve));
    // A socket file already at the path, as a run killed with -9 leaves one, is replaced.
    await serving(dir);
    expect((await sendControl('{"command":"drain","deadlineSeconds":0,"reason":"leave"}', dir)).ok).toBe(true);
    stale.close();

    const other = tempDir('agent-ctl-file-');
    writeFileSync(join(other, 'control.sock'), 'not a socket');
    await expect(serveControl(controlSocketPath(other), async () => ({ ok: true, message: '' }))).rejects.toThrow(
      /EADDRINUSE/,
    );
  });

  it('says the agent is not running when nothing listens', async () => {
    const reply = await sendControl(
      '{"command":"drain","deadlineSeconds":60,"reason":"pause"}',
      tempDir('agent-ctl-none-'),
    );
    expect(reply.ok).toBe(false);
    expect(reply.message).toMatch(/not running or still starting/);
  });

  it('the bundle prints one reply line and exits 0 when ok, 1 otherwise', async () => {
    const dir = tempDir('agent-ctl-bundle-');
    await serving(dir);
    const outfile = join(dir, 'control.mjs');
    await build({
      entryPoints: [join(import.meta.dirname, '../src/control/control-main.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile,
      logLevel: 'silent',
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    });
    const exec = (arg: string) =>
      new Promise<{ code: number; stdout: string }>((resolve) =>
        execFile('node', [outfile, arg], { env: { ...process.env, STATE_DIR: dir } }, (error, stdout) =>
          resolve({ code: error ? Number(error.code) : 0, stdout }),
        ),
      );
    const good = await exec('{"command":"drain","deadlineSeconds":5,"reason":"pause"}');
    expect(good.code).toBe(0);
    expect(good.stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(good.stdout)).toEqual({ ok: true, message: 'drained', tasksLeft: 0 });
    const bad = await exec('{"command":"limits"}');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).ok).toBe(false);
  });
});
