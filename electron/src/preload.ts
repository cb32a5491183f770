import { contextBridge, type IpcRendererEvent, ipcRenderer } from 'electron';
import { buildRayAgentApi } from './api-bridge.js';

// Sandboxed preload: only `electron` may be required, so everything else is bundled in. The page gets a frozen
// object with exactly the protocol's calls; it never sees ipcRenderer itself.
const api = buildRayAgentApi({
  invoke: (channel, ...args) => ipcRenderer.invoke(channel, ...args),
  subscribe(channel, listener) {
    const forward = (_event: IpcRendererEvent, payload: unknown) => listener(payload);
    ipcRenderer.on(channel, forward);
    return () => {
      ipcRenderer.removeListener(channel, forward);
    };
  },
});

contextBridge.exposeInMainWorld('rayAgent', api);
