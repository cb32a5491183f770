import type { EventChannel, EventChannels, InvokeChannel, RayAgentApi } from '@ray-agent/protocol';
import { isEventChannel, PRELOAD_INVOKE_CHANNELS } from './channels.js';
import { unwrapEnvelope } from './envelope.js';

/** What the preload needs from ipcRenderer; kept abstract so the API's shape is tested without Electron. */
export interface RendererIpc {
  invoke(channel: InvokeChannel, ...args: unknown[]): Promise<unknown>;
  subscribe(channel: EventChannel, listener: (payload: unknown) => void): () => void;
}

/** `window.rayAgent`: exactly protocol's invoke channels plus `on()`, which returns its unsubscribe function. */
export function buildRayAgentApi(ipc: RendererIpc): RayAgentApi {
  const api: Record<string, unknown> = {};
  for (const channel of PRELOAD_INVOKE_CHANNELS) {
    api[channel] = async (...args: unknown[]) => unwrapEnvelope(await ipc.invoke(channel, ...args));
  }
  api.on = <E extends EventChannel>(channel: E, listener: (payload: EventChannels[E]) => void) => {
    if (!isEventChannel(channel)) throw new Error(`Unknown event channel: ${String(channel)}`);
    if (typeof listener !== 'function') throw new Error('on() needs a listener function');
    return ipc.subscribe(channel, (payload) => listener(payload as EventChannels[E]));
  };
  return Object.freeze(api) as RayAgentApi;
}
