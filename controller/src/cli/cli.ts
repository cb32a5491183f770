import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { EnrollmentToken, type PullProgress, type Settings, type StatusView } from '@ray-agent/protocol';
import { Command, InvalidArgumentError } from 'commander';
import { defaultSettingsDir, SettingsStore } from '../app/settings-store.js';
import { StatusPoller } from '../app/status-poller.js';
import { deriveView, type EngineFacts, tunnelFacts } from '../app/view-model.js';
import { AgentContainer, type AgentSpec } from '../container/agent-container.js';
import { agentSpecFor } from '../container/agent-spec.js';
import { DockerEngine } from '../engine/docker-engine.js';
import { Playground } from '../playground.js';

/**
 * `ray-agent`: the tray app's controller without a desktop, for people without one and for scripts. Same
 * settings file, same container.
 */
const MiB = 1024 ** 2;

interface Globals {
  settingsDir: string;
  container: string;
  managerImage: string;
}

function context(globals: Globals) {
  const engine = DockerEngine.fromEnvironment();
  const store = new SettingsStore(globals.settingsDir);
  const loaded = store.load();
  if (loaded.notice) process.stderr.write(`${loaded.notice}\n`);
  const agent = new AgentContainer(engine.docker, { name: globals.container });
  return { engine, store, settings: loaded.settings, agent, playground: new Playground(engine.docker, agent) };
}

async function requireEngine(engine: DockerEngine): Promise<void> {
  const state = await engine.check();
  if (state.kind !== 'ready') fail(`${state.message} ${state.fix}`);
}

async function currentView(ctx: ReturnType<typeof context>): Promise<StatusView> {
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

async function waitForContributing(ctx: ReturnType<typeof context>, timeoutSeconds: number): Promise<StatusView> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  let last = '';
  for (;;) {
    const view = await currentView(ctx);
    if (view.headline !== last) process.stderr.write(`  ${view.headline}\n`);
    last = view.headline;
    if (view.phase === 'contributing') return view;
    if (
      ['error', 'crash-looping', 'outdated', 'docker-missing', 'docker-stopped', 'docker-denied'].includes(
        view.phase,
      ) &&
      Date.now() > deadline - (timeoutSeconds - 20) * 1000
    )
      fail(`${view.headline}${view.detail ? `: ${view.detail}` : ''}`);
    if (Date.now() > deadline)
      fail(`the agent did not start contributing within ${timeoutSeconds} s (last: ${view.headline})`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function progressPrinter(): (progress: PullProgress) => void {
  let lastPercent = -1;
  return (progress) => {
    if (progress.error) process.stderr.write(`  pull: ${progress.error}\n`);
    const percent = progress.fraction === null ? null : Math.floor(progress.fraction * 10) * 10;
    if (percent !== null && percent !== lastPercent) {
      lastPercent = percent;
      process.stderr.write(`  pulling ${progress.image}: ${percent}%\n`);
    }
  };
}

/** `ray-agent status` (and `up`) as text. */
export function describeView(view: StatusView): string {
  const lines = [view.headline];
  if (view.detail) lines.push(`  ${view.detail}`);
  lines.push(
    `  registration: ${view.registration.state}${view.registration.providerId ? ` (${view.registration.providerId})` : ''}`,
  );
  lines.push(
    `  heartbeat: ${view.heartbeat.healthy ? 'healthy' : view.heartbeat.failingSince ? `failing since ${view.heartbeat.failingSince}` : 'not yet'}`,
  );
  lines.push(`  running tasks: ${view.runningTasks}`);
  if (view.tunnel) lines.push(`  ${view.tunnel.line.replace(/^Tunnel: /, 'tunnel: ')}`);
  if (view.limits)
    lines.push(`  limits: ${cpuLimitText(view.limits)}, ${Math.round(view.limits.memoryBytes / MiB)} MiB`);
  return lines.join('\n');
}

/**
 * The spec `ray-agent up` runs: the tray app's builder over the same settings, so without a token it is the app's
 * container (adopted, not replaced), and a token from --token-file is delivered into it.
 */
export function cliAgentSpec(settings: Settings, name: string, token?: string): AgentSpec {
  return agentSpecFor({ settings, name, secrets: { token: token ?? null } });
}

/** "2 CPUs", or "Ray uses 2 of 2.5 CPUs" when Ray schedules fewer whole CPUs than the container has. */
export function cpuLimitText(limits: { cpus: number; rayCpus?: number | undefined }): string {
  const cpus = (n: number) => `${n} ${n === 1 ? 'CPU' : 'CPUs'}`;
  return limits.rayCpus !== undefined && limits.rayCpus < limits.cpus
    ? `Ray uses ${limits.rayCpus} of ${cpus(limits.cpus)}`
    : cpus(limits.cpus);
}

function fail(message: string): never {
  process.stderr.write(`ray-agent: ${message}\n`);
  process.exit(1);
}

function positiveInt(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new InvalidArgumentError('must be a whole number, e.g. 100');
  return number;
}

export function buildCli(): Command {
  const program = new Command('ray-agent')
    .description('Contribute this computer to a Ray cluster: the agent container, from the command line.')
    .option(
      '--settings-dir <dir>',
      'settings folder (shared with the tray app)',
      process.env.RAY_AGENT_SETTINGS_DIR ?? defaultSettingsDir(process.platform, process.env, homedir()),
    )
    .option('--container <name>', 'the agent container name', process.env.RAY_AGENT_CONTAINER ?? 'ray-agent')
    .option('--manager-image <image>', 'the reference manager image (playground)', 'ray-agent-manager:dev')
    .showHelpAfterError();

  program
    .command('up')
    .description('start contributing with the saved settings, or a local playground with --local')
    .option('--local', 'start a local Ray head and manager and join them, then run a sample job')
    .option('--token-file <file>', 'enrollment token file (needed until the first registration)')
    .option('--wait <seconds>', 'how long to wait for "contributing"', positiveInt, 240)
    .action(async (options: { local?: boolean; tokenFile?: string; wait: number }) => {
      const ctx = context(program.opts<Globals>());
      await requireEngine(ctx.engine);
      const saved = ctx.store.save({ contribute: true });
      if (!saved.ok)
        fail(
          Object.entries(saved.errors)
            .map(([key, message]) => `${key}: ${message}`)
            .join('; '),
        );
      ctx.settings = saved.settings;
      if (options.local) {
        process.stderr.write(
          'starting the local playground: a Ray head, the manager and the gateway on a cluster network, the agent behind a NAT\n',
        );
        await ctx.playground.up({
          settings: ctx.settings,
          managerImage: program.opts<Globals>().managerImage,
          onProgress: progressPrinter(),
        });
        const view = await waitForContributing(ctx, options.wait);
        process.stdout.write(`${describeView(view)}\n`);
        process.stderr.write('running a sample job of 8 tasks on the agent\n');
        const job = ctx.playground.sampleJob(8, 5);
        const busy = await waitForTasks(ctx, 20);
        if (busy) process.stdout.write(`  while the job ran, the agent counted ${busy} running tasks\n`);
        process.stdout.write(`${await job}\n`);
        return;
      }
      if (!ctx.settings.clusterAddress || !ctx.settings.managerUrl)
        fail('no cluster configured: set it in the tray app, or try `ray-agent up --local` for a local playground');
      let token: string | undefined;
      if (options.tokenFile) {
        const parsed = EnrollmentToken.safeParse(readFileSync(options.tokenFile, 'utf8'));
        if (!parsed.success) fail(`--token-file: the token ${parsed.error.issues[0]?.message}`);
        token = parsed.data;
      }
      const result = await ctx.agent.up(cliAgentSpec(ctx.settings, ctx.agent.name, token), progressPrinter());
      if (result.secretsDelivered) process.stderr.write('  the enrollment token was delivered to the agent\n');
      for (const warning of result.warnings) process.stderr.write(`  ${warning}\n`);
      process.stdout.write(`${describeView(await waitForContributing(ctx, options.wait))}\n`);
    });

  program
    .command('down')
    .description('stop contributing: the agent drains and stops (--local also removes the playground)')
    .option('--local', 'also remove the playground head, manager and network, and the agent container')
    .action(async (options: { local?: boolean }) => {
      const ctx = context(program.opts<Globals>());
      await requireEngine(ctx.engine);
      ctx.store.save({ contribute: false });
      process.stderr.write('stopping the agent (running tasks may finish first)\n');
      const result = await ctx.agent.down(options.local ? { remove: true } : {});
      if (options.local) await ctx.playground.down();
      process.stdout.write(result.existed ? 'stopped\n' : 'nothing was running\n');
    });

  program
    .command('status')
    .description("the agent's state, registration, heartbeat and running tasks")
    .option('--json', 'print the view as JSON')
    .action(async (options: { json?: boolean }) => {
      const view = await currentView(context(program.opts<Globals>()));
      process.stdout.write(options.json ? `${JSON.stringify(view, null, 2)}\n` : `${describeView(view)}\n`);
    });

  program
    .command('logs')
    .description("the agent container's log")
    .option('-f, --follow', 'keep printing new lines')
    .option('--tail <lines>', 'lines from the end', positiveInt, 100)
    .action(async (options: { follow?: boolean; tail: number }) => {
      const ctx = context(program.opts<Globals>());
      await requireEngine(ctx.engine);
      const read = await ctx.agent.logs({ tail: options.tail, follow: Boolean(options.follow) }, (line) =>
        process.stdout.write(`${line}\n`),
      );
      process.once('SIGINT', () => read.stop());
      await read.ended;
    });
  return program;
}

async function waitForTasks(ctx: ReturnType<typeof context>, seconds: number): Promise<number> {
  let most = 0;
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    const view = await currentView(ctx);
    most = Math.max(most, view.runningTasks);
    if (most > 0 && view.runningTasks < most) break;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return most;
}
