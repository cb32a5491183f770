import { CA_FILE, type PullProgress, type Settings, type StatusView } from '@ray-agent/protocol';
import { defaultSettingsDir, SettingsStore } from '../app/settings-store.js';
import { StatusPoller } from '../app/status-poller.js';
import { deriveView, type EngineFacts, tunnelFacts } from '../app/view-model.js';
import { AgentContainer, type AgentSpec } from '../container/agent-container.js';
import { agentSpecFor } from '../container/agent-spec.js';
import { firstFileOf } from '../container/state-volume-secrets.js';
import { DockerEngine } from '../engine/docker-engine.js';
import { Playground } from '../playground/playground.js';

/**
 * What every `ray-agent` command shares: where it writes (so tests capture it), the settings and engine it acts on,
 * and the one way it fails.
 */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** The environment the defaults come from (settings folder, container name, Docker host). */
  env: NodeJS.ProcessEnv;
}

export const processIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
};

export interface Globals {
  settingsDir: string;
  container: string;
  managerImage: string;
  /** A Docker network for the agent: a cluster on this same engine (and tests). Not a setting: the window has none. */
  dockerNetwork?: string;
}

/**
 * A failure the person can act on: printed as `ray-agent: <line>` per line, exit 1. Thrown, not `process.exit`ed,
 * so the commands run inside tests.
 */
export class CliError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('\n'));
    this.name = 'CliError';
  }
}

export function fail(...lines: string[]): never {
  throw new CliError(lines);
}

export function defaultSettingsDirFor(env: NodeJS.ProcessEnv, home: string): string {
  return env.RAY_AGENT_SETTINGS_DIR ?? defaultSettingsDir(process.platform, env, home);
}

export type CliContext = ReturnType<typeof context>;

export function context(globals: Globals, io: CliIo) {
  const engine = DockerEngine.fromEnvironment({}, io.env);
  const store = new SettingsStore(globals.settingsDir);
  const loaded = store.load();
  if (loaded.notice) io.stderr(`${loaded.notice}\n`);
  const agent = new AgentContainer(engine.docker, { name: globals.container });
  return {
    engine,
    store,
    settings: loaded.settings,
    agent,
    io,
    globals,
    playground: new Playground(engine.docker, agent),
  };
}

export async function requireEngine(engine: DockerEngine): Promise<void> {
  const state = await engine.check();
  if (state.kind !== 'ready') fail(`${state.message} ${state.fix}`);
}

/** The messages of a refused save, one line each, named as the caller's flags or keys name the settings. */
export function saveErrors(errors: Record<string, string | undefined>, nameOf: (key: string) => string): string[] {
  return Object.entries(errors).map(([key, message]) => `${nameOf(key)}: ${message}`);
}

/**
 * The spec the CLI runs: the tray app's builder over the same settings, so without a token it is the app's
 * container (adopted, not replaced). A private CA already delivered is given again, so a replaced container still
 * reads it (the agent trusts only what MANAGER_CA_FILE names).
 */
export function cliSpec(
  settings: Settings,
  name: string,
  extra: { token?: string | undefined; managerCaPem?: string | null | undefined; network?: string | undefined } = {},
): AgentSpec {
  return agentSpecFor({
    settings,
    name,
    secrets: { token: extra.token ?? null, managerCaPem: extra.managerCaPem ?? null },
    ...(extra.network ? { overrides: { network: extra.network } } : {}),
  });
}

/** The manager CA the agent's state volume holds (a certificate, not a secret), or null. */
export async function deliveredManagerCa(ctx: CliContext): Promise<string | null> {
  const info = await ctx.agent.find();
  if (info === null) return null;
  try {
    const stream = await ctx.engine.docker.getContainer(info.Id).getArchive({ path: CA_FILE });
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    const pem = firstFileOf(Buffer.concat(chunks));
    return pem?.includes('-----BEGIN CERTIFICATE-----') ? pem : null;
  } catch (error) {
    if ((error as { statusCode?: unknown }).statusCode === 404) return null;
    throw error;
  }
}

export async function currentView(ctx: CliContext): Promise<StatusView> {
  const state = await ctx.engine.check();
  const engine: EngineFacts =
    state.kind === 'ready' ? { kind: 'ready' } : { kind: state.kind, message: state.message, fix: state.fix };
  const container = state.kind === 'ready' ? await ctx.agent.status() : undefined;
  const agent = container?.running ? await new StatusPoller(ctx.settings.statusPort).read() : undefined;
  return deriveView({
    contribute: ctx.settings.contribute,
    engine,
    container: container?.exists ? container : undefined,
    agent,
    pull: undefined,
    stopping: false,
    now: new Date(),
    tunnel: tunnelFacts(container, ctx.agent.tunnelName),
  });
}

const HOPELESS = ['error', 'crash-looping', 'outdated', 'docker-missing', 'docker-stopped', 'docker-denied'];

export async function waitForContributing(ctx: CliContext, timeoutSeconds: number): Promise<StatusView> {
  const started = Date.now();
  const deadline = started + timeoutSeconds * 1000;
  let last = '';
  for (;;) {
    const view = await currentView(ctx);
    if (view.headline !== last) ctx.io.stderr(`  ${view.headline}\n`);
    last = view.headline;
    if (view.phase === 'contributing') return view;
    // A hopeless phase in the first 20 s may be the old container's last word: give the new one that long.
    if (HOPELESS.includes(view.phase) && Date.now() - started > 20_000)
      fail(`${view.headline}${view.detail ? `: ${view.detail}` : ''}`);
    if (Date.now() > deadline)
      fail(`the agent did not start contributing within ${timeoutSeconds} s (last: ${view.headline})`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

export function progressPrinter(io: CliIo): (progress: PullProgress) => void {
  let lastPercent = -1;
  return (progress) => {
    if (progress.error) io.stderr(`  pull: ${progress.error}\n`);
    const percent = progress.fraction === null ? null : Math.floor(progress.fraction * 10) * 10;
    if (percent !== null && percent !== lastPercent) {
      lastPercent = percent;
      io.stderr(`  pulling ${progress.image}: ${percent}%\n`);
    }
  };
}
