export * from './agent-state.js';
export * from './common.js';
export * from './provider-api.js';
export * from './status.js';
