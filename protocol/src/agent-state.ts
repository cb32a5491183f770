import { z } from 'zod';

/**
 * The agent's overall state, as the tray app and the manager see it.
 * starting: validating config and preflighting; connecting: first registration/join in progress;
 * contributing: registered and the Ray node is alive; reconnecting: lost the node or the head, rejoining;
 * draining: a stop was requested and running tasks are finishing; stopped: exited cleanly;
 * error: cannot continue without a person (bad token, version mismatch, ...).
 */
export const AgentState = z.enum([
  'starting',
  'connecting',
  'contributing',
  'reconnecting',
  'draining',
  'stopped',
  'error',
]);
export type AgentState = z.infer<typeof AgentState>;

export const RayNodeState = z.enum(['not_started', 'joining', 'joined', 'restarting', 'stopping', 'stopped', 'failed']);
export type RayNodeState = z.infer<typeof RayNodeState>;
