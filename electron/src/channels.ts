import type { EventChannel, InvokeChannel } from '@ray-agent/protocol';

/**
 * The channel names the preload exposes. Type-only imports keep zod out of the sandboxed preload bundle; the mapped
 * types make the compiler reject a missing or an extra channel, and a test compares them with protocol's lists.
 */
const INVOKE: { readonly [C in InvokeChannel]: true } = {
  'settings:get': true,
  'settings:save': true,
  'token:get-state': true,
  'token:set': true,
  'contribute:set': true,
  'container:replace': true,
  'status:get': true,
  'limits:get': true,
  'logs:tail': true,
  'playground:start': true,
  'contribute:stop': true,
  'history:get': true,
  'cluster:leave': true,
};

const EVENTS: { readonly [E in EventChannel]: true } = {
  'status:changed': true,
  'pull:progress': true,
  'logs:data': true,
  notice: true,
};

export const PRELOAD_INVOKE_CHANNELS = Object.keys(INVOKE) as InvokeChannel[];
export const PRELOAD_EVENT_CHANNELS = Object.keys(EVENTS) as EventChannel[];

export function isEventChannel(name: unknown): name is EventChannel {
  return typeof name === 'string' && Object.hasOwn(EVENTS, name);
}
