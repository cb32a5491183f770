import { EVENT_CHANNELS, INVOKE_CHANNELS } from '@ray-agent/protocol';
import { describe, expect, it } from 'vitest';
import { buildRayAgentApi, type RendererIpc } from '../src/api-bridge.js';
import { PRELOAD_EVENT_CHANNELS, PRELOAD_INVOKE_CHANNELS } from '../src/channels.js';

/** A stand-in for ipcRenderer (Electron cannot run here): scripted answers and a listener registry. */
function standInIpcRenderer(answers: Record<string, unknown>) {
  const invoked: Array<[string, unknown[]]> = [];
  const listeners = new Map<string, Set<(payload: unknown) => void>>();
  const ipc: RendererIpc = {
    async invoke(channel, ...args) {
      invoked.push([channel, args]);
      return answers[channel];
    },
    subscribe(channel, listener) {
      const set = listeners.get(channel) ?? new Set();
      set.add(listener);
      listeners.set(channel, set);
      return () => set.delete(listener);
    },
  };
  const emit = (channel: string, payload: unknown) => {
    for (const listener of listeners.get(channel) ?? []) listener(payload);
  };
  return { ipc, invoked, emit, listeners };
}

describe('window.rayAgent as the preload builds it, over a stand-in ipcRenderer', () => {
  it('the preload channel lists are exactly the protocol lists', () => {
    expect(PRELOAD_INVOKE_CHANNELS).toEqual([...INVOKE_CHANNELS]);
    expect(PRELOAD_EVENT_CHANNELS).toEqual([...EVENT_CHANNELS]);
  });

  it('exposes exactly the invoke channels and on(), frozen', () => {
    const api = buildRayAgentApi(standInIpcRenderer({}).ipc);
    expect(Object.keys(api).sort()).toEqual([...INVOKE_CHANNELS, 'on'].sort());
    expect(Object.isFrozen(api)).toBe(true);
  });

  it('turns {result} into the value and {error} into an Error with the message', async () => {
    const { ipc, invoked } = standInIpcRenderer({
      'logs:tail': { result: 'a\nb\n' },
      'playground:start': { error: { message: 'Docker is not running.' } },
      'status:get': 'not an envelope',
    });
    const api = buildRayAgentApi(ipc);
    await expect(api['logs:tail'](50)).resolves.toBe('a\nb\n');
    await expect(api['playground:start']()).rejects.toThrow('Docker is not running.');
    await expect(api['status:get']()).rejects.toThrow(/answer the window does not understand/);
    expect(invoked).toEqual([
      ['logs:tail', [50]],
      ['playground:start', []],
      ['status:get', []],
    ]);
  });

  it('on() delivers events and returns a working unsubscribe; unknown channels throw', () => {
    const { ipc, emit, listeners } = standInIpcRenderer({});
    const api = buildRayAgentApi(ipc);
    const seen: string[] = [];
    const off = api.on('logs:data', (chunk) => seen.push(chunk));
    emit('logs:data', 'one');
    off();
    emit('logs:data', 'two');
    expect(seen).toEqual(['one']);
    expect(listeners.get('logs:data')?.size).toBe(0);
    expect(() => api.on('docker:events' as 'notice', () => {})).toThrow('Unknown event channel: docker:events');
  });
});
