import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { EnrollmentToken, type Settings } from '@ray-agent/protocol';
import { Command } from 'commander';
import type { AgentSpec } from '../container/agent-container.js';
import { agentSpecFor } from '../container/agent-spec.js';
import {
  type CliContext,
  type CliIo,
  cliSpec,
  context,
  currentView,
  defaultSettingsDirFor,
  deliveredManagerCa,
  fail,
  type Globals,
  processIo,
  progressPrinter,
  requireEngine,
  saveErrors,
  waitForContributing,
} from './cli-context.js';
import { addConfigCommand } from './config-command.js';
import { describeView, positiveInt } from './describe.js';
import { addHistoryCommand } from './history-command.js';
import { addJoinCommand } from './join-command.js';
import { addLeaveCommand } from './leave-command.js';
import { addRunCommand } from './run-command.js';

export { CliError } from './cli-context.js';
export { cpuLimitText, describeView } from './describe.js';

/**
 * `ray-agent`: the tray app's controller without a desktop, for people without one and for scripts. Same
 * settings file, same container.
 */

/**
 * The spec `ray-agent up` runs: the tray app's builder over the same settings, so without a token it is the app's
 * container (adopted, not replaced), and a token from --token-file is delivered into it.
 */
export function cliAgentSpec(settings: Settings, name: string, token?: string): AgentSpec {
  return agentSpecFor({ settings, name, secrets: { token: token ?? null } });
}

/**
 * The whole command line. `io` is where it writes and which environment gives the defaults; `exitOverride` makes
 * commander throw instead of exiting (tests parse with `{ from: 'user' }`).
 */
export function buildCli(ioOverrides: Partial<CliIo> = {}, options: { exitOverride?: boolean } = {}): Command {
  const io: CliIo = { ...processIo, ...ioOverrides };
  const program = new Command('ray-agent');
  program.configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  if (options.exitOverride) program.exitOverride();
  program
    .description('Contribute this computer to a Ray cluster: the agent container, from the command line.')
    .option(
      '--settings-dir <dir>',
      'settings folder (shared with the tray app)',
      defaultSettingsDirFor(io.env, homedir()),
    )
    .option('--container <name>', 'the agent container name', io.env.RAY_AGENT_CONTAINER ?? 'ray-agent')
    .option('--manager-image <image>', 'the reference manager image (playground)', 'ray-agent-manager:dev')
    .option(
      '--docker-network <name>',
      'a Docker network for the agent, for a cluster on this same Docker Engine (tests)',
      io.env.RAY_AGENT_DOCKER_NETWORK,
    )
    .showHelpAfterError();

  addJoinCommand(program, io);
  addConfigCommand(program, io);
  addRunCommand(program, io);
  addHistoryCommand(program, io);
  addLeaveCommand(program, io);

  program
    .command('up')
    .description('start contributing with the saved settings, or a local playground with --local')
    .option('--local', 'start a local Ray head and manager and join them, then run a sample job')
    .option('--token-file <file>', 'enrollment token file (needed until the first registration)')
    .option('--wait <seconds>', 'how long to wait for "contributing"', positiveInt, 240)
    .action(async (options: { local?: boolean; tokenFile?: string; wait: number }) => {
      const globals = program.opts<Globals>();
      const ctx = context(globals, io);
      await requireEngine(ctx.engine);
      const saved = ctx.store.save({ contribute: true });
      if (!saved.ok) fail(saveErrors(saved.errors, (key) => key).join('; '));
      ctx.settings = saved.settings;
      if (options.local) {
        io.stderr(
          'starting the local playground: a Ray head, the manager and the gateway on a cluster network, the agent behind a NAT\n',
        );
        await ctx.playground.up({
          settings: ctx.settings,
          managerImage: globals.managerImage,
          onProgress: progressPrinter(io),
        });
        const view = await waitForContributing(ctx, options.wait);
        io.stdout(`${describeView(view)}\n`);
        io.stderr('running a sample job of 8 tasks on the agent\n');
        const job = ctx.playground.sampleJob(8, 5);
        const busy = await waitForTasks(ctx, 20);
        if (busy) io.stdout(`  while the job ran, the agent counted ${busy} running tasks\n`);
        io.stdout(`${await job}\n`);
        return;
      }
      if (!ctx.settings.clusterAddress || !ctx.settings.managerUrl)
        fail(
          'no cluster configured: run `ray-agent join --head … --manager … --token-file …`, set it in the tray app, or try `ray-agent up --local` for a local playground',
        );
      let token: string | undefined;
      if (options.tokenFile) {
        const parsed = EnrollmentToken.safeParse(readFileSync(options.tokenFile, 'utf8'));
        if (!parsed.success) fail(`--token-file: the token ${parsed.error.issues[0]?.message}`);
        token = parsed.data;
      }
      const spec = cliSpec(ctx.settings, ctx.agent.name, {
        token,
        managerCaPem: await deliveredManagerCa(ctx),
        network: globals.dockerNetwork,
      });
      const result = await ctx.agent.up(spec, progressPrinter(io));
      if (result.secretsDelivered) io.stderr('  the enrollment token was delivered to the agent\n');
      for (const warning of result.warnings) io.stderr(`  ${warning}\n`);
      io.stdout(`${describeView(await waitForContributing(ctx, options.wait))}\n`);
    });

  program
    .command('down')
    .description('stop contributing: the agent drains and stops (--local also removes the playground)')
    .option('--local', 'also remove the playground head, manager and network, and the agent container')
    .action(async (options: { local?: boolean }) => {
      const ctx = context(program.opts<Globals>(), io);
      await requireEngine(ctx.engine);
      ctx.store.save({ contribute: false });
      io.stderr('stopping the agent (running tasks may finish first)\n');
      const result = await ctx.agent.down(options.local ? { remove: true } : {});
      if (options.local) await ctx.playground.down();
      io.stdout(result.existed ? 'stopped\n' : 'nothing was running\n');
    });

  program
    .command('status')
    .description("the agent's state, registration, heartbeat and running tasks")
    .option('--json', 'print the view as JSON')
    .action(async (options: { json?: boolean }) => {
      const view = await currentView(context(program.opts<Globals>(), io));
      io.stdout(options.json ? `${JSON.stringify(view, null, 2)}\n` : `${describeView(view)}\n`);
    });

  program
    .command('logs')
    .description("the agent container's log")
    .option('-f, --follow', 'keep printing new lines')
    .option('--tail <lines>', 'lines from the end', positiveInt, 100)
    .action(async (options: { follow?: boolean; tail: number }) => {
      const ctx = context(program.opts<Globals>(), io);
      await requireEngine(ctx.engine);
      const read = await ctx.agent.logs({ tail: options.tail, follow: Boolean(options.follow) }, (line) =>
        io.stdout(`${line}\n`),
      );
      process.once('SIGINT', () => read.stop());
      await read.ended;
    });
  return program;
}

async function waitForTasks(ctx: CliContext, seconds: number): Promise<number> {
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
