import { DEFAULT_SETTINGS, INVOKE_CHANNELS, type StatusView } from '@ray-agent/protocol';
import { describe, expect, it } from 'vitest';
import type { IpcEnvelope } from '../src/envelope.js';
import { type IpcEventLike, type IpcMainLike, type RayAgentService, registerIpc } from '../src/ipc-main.js';

const APP_PAGE = 'file:///opt/Ray%20Agent/resources/app.asar/renderer/dist/index.html';
const own: IpcEventLike = { senderFrame: { url: APP_PAGE } };
const foreign: IpcEventLike = { senderFrame: { url: 'https://evil.example/' } };

type Handler = (event: IpcEventLike, ...args: unknown[]) => Promise<IpcEnvelope>;

/** Records handlers the way Electron's ipcMain would hold them (Electron cannot run here). */
function recordingIpcMain(): IpcMainLike & { handlers: Map<string, Handler> } {
  const handlers = new Map<string, Handler>();
  return {
    handlers,
    handle(channel, listener) {
      if (handlers.has(channel)) throw new Error(`second handler for ${channel}`);
      handlers.set(channel, listener);
    },
  };
}

const VIEW: StatusView = {
  phase: 'off',
  headline: 'Not contributing',
  detail: null,
  contributing: false,
  registration: { state: 'unregistered', providerId: null },
  heartbeat: { healthy: false, lastSuccessAt: null, failingSince: null, consecutiveFailures: 0 },
  runningTasks: 0,
  limits: null,
  agentVersion: null,
  updatedAt: '2025-01-01T00:00:00.000Z',
};

/** A stand-in for the app service (the real one drives Docker): records every call it gets. */
function standInService(): RayAgentService & { calls: Array<[string, unknown[]]> } {
  const calls: Array<[string, unknown[]]> = [];
  const record =
    <T>(name: string, answer: T) =>
    async (...args: unknown[]) => {
      calls.push([name, args]);
      return answer;
    };
  return {
    calls,
    'settings:get': record('settings:get', DEFAULT_SETTINGS),
    'settings:save': record('settings:save', { ok: true as const, settings: DEFAULT_SETTINGS }),
    'token:get-state': record('token:get-state', { stored: false, unavailableReason: null }),
    'token:set': record('token:set', { ok: true as const }),
    'contribute:set': record('contribute:set', { ok: true as const }),
    'container:replace': record('container:replace', { ok: true as const }),
    'status:get': record('status:get', VIEW),
    'limits:get': record('limits:get', { docker: null, host: { cpus: 2, memoryBytes: 2 ** 34, model: 'x' } }),
    'logs:tail': record('logs:tail', 'line\n'),
    'contribute:stop': record('contribute:stop', { ok: true as const }),
    'history:get': record('history:get', { version: 1 as const, hours: [] }),
    'cluster:leave': record('cluster:leave', {
      ok: true as const,
      report: { deregistered: true, removed: ['container ray-agent'], leftovers: [] },
    }),
    'playground:start': async () => {
      calls.push(['playground:start', []]);
      throw new Error('Docker is not running: start Docker Desktop and try again.');
    },
  };
}

function setup() {
  const ipcMain = recordingIpcMain();
  const service = standInService();
  const dispatch = registerIpc(ipcMain, service, (event) => event.senderFrame?.url === APP_PAGE);
  const call = (channel: string, event: IpcEventLike, ...args: unknown[]) => {
    const handler = ipcMain.handlers.get(channel);
    if (!handler) throw new Error(`no handler for ${channel}`);
    return handler(event, ...args);
  };
  return { ipcMain, service, dispatch, call };
}

describe('registerIpc with a stand-in service and a recording ipcMain (Electron cannot run here)', () => {
  it('registers exactly the protocol invoke channels', () => {
    const { ipcMain } = setup();
    expect([...ipcMain.handlers.keys()].sort()).toEqual([...INVOKE_CHANNELS].sort());
  });

  it('passes valid calls through and wraps answers in {result}', async () => {
    const { service, call } = setup();
    expect(await call('settings:get', own)).toEqual({ result: DEFAULT_SETTINGS });
    expect(await call('contribute:set', own, true)).toEqual({ result: { ok: true } });
    expect(await call('logs:tail', own, 200)).toEqual({ result: 'line\n' });
    expect(await call('token:set', own, 'rat_0123456789abcdef')).toEqual({ result: { ok: true } });
    expect(await call('settings:save', own, { cpus: 3, clusterAddress: ' ray://head.lan:10001 ' })).toEqual({
      result: { ok: true, settings: DEFAULT_SETTINGS },
    });
    expect(await call('contribute:stop', own, 'after-current')).toEqual({ result: { ok: true } });
    expect(await call('contribute:stop', own, 'now')).toEqual({ result: { ok: true } });
    expect(await call('history:get', own)).toEqual({ result: { version: 1, hours: [] } });
    expect(await call('cluster:leave', own)).toEqual({
      result: { ok: true, report: { deregistered: true, removed: ['container ray-agent'], leftovers: [] } },
    });
    expect(service.calls).toEqual([
      ['settings:get', []],
      ['contribute:set', [true]],
      ['logs:tail', [200]],
      ['token:set', ['rat_0123456789abcdef']],
      // The schema's own normalisation (trim) reaches the service.
      ['settings:save', [{ cpus: 3, clusterAddress: 'ray://head.lan:10001' }]],
      ['contribute:stop', ['after-current']],
      ['contribute:stop', ['now']],
      ['history:get', []],
      ['cluster:leave', []],
    ]);
  });

  it('a service error comes back as {error} with its message, not as a rejection', async () => {
    const { call } = setup();
    expect(await call('playground:start', own)).toEqual({
      error: { message: 'Docker is not running: start Docker Desktop and try again.' },
    });
  });

  const badPayloads: Array<[string, unknown[]]> = [
    ['contribute:set', ['yes']],
    ['contribute:set', []],
    ['contribute:set', [true, 'extra']],
    ['logs:tail', [0]],
    ['logs:tail', [5001]],
    ['logs:tail', [10.5]],
    ['logs:tail', ['100']],
    ['token:set', ['x'.repeat(8193)]],
    ['token:set', [{ toString: 'rat_0123456789abcdef' }]],
    ['settings:save', [{ cpus: 'many', dockerHost: 'unix:///var/run/docker.sock' }]],
    ['settings:save', [{ cpus: 2 }, 'extra']],
    ['settings:save', [{ version: 2 }]],
    ['settings:save', [{ dockerHost: 'tcp://0.0.0.0:2375' }]],
    ['settings:save', [null]],
    ['settings:get', ['unexpected']],
    ['contribute:stop', []],
    ['contribute:stop', ['later']],
    ['contribute:stop', [true]],
    ['contribute:stop', ['now', 'extra']],
    ['history:get', [30]],
    ['cluster:leave', [{ keepImage: true }]],
  ];
  for (const [channel, args] of badPayloads) {
    it(`refuses ${channel} with ${JSON.stringify(args).slice(0, 40)}; the service is not called`, async () => {
      const { service, call } = setup();
      const answer = await call(channel, own, ...args);
      expect(answer).toMatchObject({
        error: { message: expect.stringMatching(`^Invalid arguments for ${channel}: `) },
      });
      expect(service.calls).toEqual([]);
    });
  }

  it('a patch whose only faults are field values is answered with field messages, without calling the service', async () => {
    const { service, call } = setup();
    const answer = await call('settings:save', own, {
      cpus: 'many',
      clusterAddress: 'head.lan',
      managerUrl: 'http://manager.lan',
    });
    expect(answer).toEqual({
      result: {
        ok: false,
        errors: {
          cpus: 'Invalid input: expected number, received string',
          clusterAddress: 'must be ray://HOST:10001 or HOST:6379, e.g. ray://ray-head.lan:10001',
          managerUrl: 'must be an https:// URL without a user name, e.g. https://manager.lan:8443',
        },
      },
    });
    expect(service.calls).toEqual([]);
  });

  it('a policy whose only faults are values is answered with the field message under policy', async () => {
    const { service, call } = setup();
    const policy = { ...DEFAULT_SETTINGS.policy, idle: { enabled: true, minutes: 0 } };
    expect(await call('settings:save', own, { policy, notifications: 'yes' })).toEqual({
      result: {
        ok: false,
        errors: {
          policy: 'idle minutes must be 1-240 minutes, e.g. 5',
          notifications: 'Invalid input: expected boolean, received string',
        },
      },
    });
    expect(service.calls).toEqual([]);
  });

  it('does not echo a refused token back in the error', async () => {
    const { call } = setup();
    const secret = `rat_${'s'.repeat(9000)}`;
    const answer = await call('token:set', own, secret);
    expect(JSON.stringify(answer)).not.toContain('ssssssss');
  });

  it('refuses every channel from a foreign frame, or a missing one; the service is not called', async () => {
    const { service, call } = setup();
    for (const channel of INVOKE_CHANNELS) {
      for (const event of [foreign, { senderFrame: null }, {}]) {
        const answer = await call(channel, event, true);
        expect(answer).toEqual({
          error: { message: `Refused ${channel}: the request did not come from the Ray Agent window.` },
        });
      }
    }
    expect(service.calls).toEqual([]);
  });

  it('refuses unknown channels, including prototype names', async () => {
    const { service, dispatch, ipcMain } = setup();
    for (const channel of ['docker:exec', 'shell:open', '__proto__', 'constructor', 'toString', 'settings:set']) {
      expect(ipcMain.handlers.has(channel)).toBe(false);
      expect(await dispatch(own, channel, [])).toEqual({ error: { message: `Unknown IPC channel: ${channel}` } });
    }
    expect(service.calls).toEqual([]);
  });
});
