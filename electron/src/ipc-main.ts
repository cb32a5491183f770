import {
  INVOKE_CHANNELS,
  type InvokeChannel,
  type InvokeChannels,
  type SaveResult,
  type SettingsErrors,
  SettingsPatch,
  StopMode,
} from '@ray-agent/protocol';
import { z } from 'zod';
import type { IpcEnvelope } from './envelope.js';

/** The main process's side of the window's API: one async method per invoke channel (the lead's app-service). */
export type RayAgentService = {
  [C in InvokeChannel]: (...args: Parameters<InvokeChannels[C]>) => Promise<ReturnType<InvokeChannels[C]>>;
};

/** The part of an IPC event that says who sent it (Electron's IpcMainInvokeEvent fits). */
export interface IpcEventLike {
  senderFrame?: { url: string } | null;
}

/** The part of Electron's ipcMain used here, so registration is tested without Electron. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: IpcEventLike, ...args: unknown[]) => Promise<IpcEnvelope>): void;
}

/** Every argument list, checked before the service sees it; extra arguments and unknown settings are refused. */
const PAYLOADS: { readonly [C in InvokeChannel]: z.ZodType } = {
  'settings:get': z.tuple([]),
  'settings:save': z.tuple([SettingsPatch.strict()]),
  'token:get-state': z.tuple([]),
  'token:set': z.tuple([z.string().max(8192)]),
  'contribute:set': z.tuple([z.boolean()]),
  'container:replace': z.tuple([]),
  'status:get': z.tuple([]),
  'limits:get': z.tuple([]),
  'logs:tail': z.tuple([z.number().int().min(1).max(5000)]),
  'playground:start': z.tuple([]),
  'contribute:stop': z.tuple([StopMode]),
  'history:get': z.tuple([]),
  'cluster:leave': z.tuple([]),
};

export type IpcDispatch = (event: IpcEventLike, channel: string, args: unknown[]) => Promise<IpcEnvelope>;

function refusal(message: string): IpcEnvelope {
  return { error: { message } };
}

const SETTINGS_KEYS = new Set(Object.keys(SettingsPatch.shape));

/**
 * A settings patch whose only problems are values of known fields (a bad URL, too few CPUs) is the person's typing,
 * not a hostile call: it is answered as a SaveResult with field messages, still without calling the service, so the
 * form can show them inline. Anything else (not an object, unknown keys, extra arguments) stays a refusal.
 */
function settingsFieldErrors(issues: ReadonlyArray<{ path: PropertyKey[]; code: string; message: string }>) {
  const errors: SettingsErrors = {};
  for (const issue of issues) {
    const [argument, field] = issue.path;
    if (argument !== 0 || typeof field !== 'string' || !SETTINGS_KEYS.has(field)) return null;
    errors[field as keyof SettingsErrors] ??= issue.message;
  }
  return errors;
}

/** Checks channel, sender and payload, then calls the service; always answers with an envelope. */
export function createIpcDispatch(
  service: RayAgentService,
  isTrustedSender: (event: IpcEventLike) => boolean,
): IpcDispatch {
  return async (event, channel, args) => {
    if (!Object.hasOwn(PAYLOADS, channel)) return refusal(`Unknown IPC channel: ${channel.slice(0, 64)}`);
    const name = channel as InvokeChannel;
    if (!isTrustedSender(event)) return refusal(`Refused ${name}: the request did not come from the Ray Agent window.`);
    const parsed = PAYLOADS[name].safeParse(args);
    if (!parsed.success) {
      const errors = name === 'settings:save' ? settingsFieldErrors(parsed.error.issues) : null;
      if (errors) return { result: { ok: false, errors } satisfies SaveResult };
      // Field paths and zod's reasons only: never the values, which may hold a token.
      const why = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'arguments'}: ${issue.message}`);
      return refusal(`Invalid arguments for ${name}: ${why.join('; ')}`);
    }
    try {
      const call = service[name] as (...callArgs: unknown[]) => Promise<unknown>;
      return { result: await call.apply(service, parsed.data as unknown[]) };
    } catch (error) {
      return refusal(error instanceof Error ? error.message : String(error));
    }
  };
}

/** Registers one handler per protocol invoke channel, and nothing else. */
export function registerIpc(
  ipcMain: IpcMainLike,
  service: RayAgentService,
  isTrustedSender: (event: IpcEventLike) => boolean,
): IpcDispatch {
  const dispatch = createIpcDispatch(service, isTrustedSender);
  for (const channel of INVOKE_CHANNELS) {
    ipcMain.handle(channel, (event, ...args) => dispatch(event, channel, args));
  }
  return dispatch;
}
