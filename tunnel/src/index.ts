export * from './commands.js';
export * from './gateway-loop.js';
export * from './keys.js';
export * from './provider-tunnel-loop.js';
export * from './tunnel-state.js';
export * from './wg.js';
