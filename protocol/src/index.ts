export * from './agent-contract.js';
export * from './agent-state.js';
export * from './common.js';
export * from './ipc.js';
export * from './provider-api.js';
export * from './settings.js';
export * from './status.js';
export * from './view-model.js';
