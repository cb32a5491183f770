import { type FSWatcher, mkdirSync, watch } from 'node:fs';
import type { PolicyView, Settings } from '@ray-agent/protocol';
import type { Command } from 'commander';
import type { AgentSpec } from '../container/agent-container.js';
import { configHash } from '../container/agent-container-spec.js';
import { containerActuator } from '../policy/container-actuator.js';
import type { PolicyActuator, PolicyTarget } from '../policy/policy-target.js';
import {
  type CliContext,
  type CliIo,
  cliSpec,
  context,
  deliveredManagerCa,
  fail,
  type Globals,
  progressPrinter,
} from './cli-context.js';
import { claimRunPid } from './run-pid.js';

/** A missed file event is caught by this re-read; cheap (one small file). */
const SETTINGS_POLL_MS = 5000;
/** `conf` writes a temp file and renames it: one save is several events. */
const SETTINGS_SETTLE_MS = 200;
const ENGINE_RETRY_MS = 5000;
/** A repeat of the stop signal sooner than this is an echo (see onSignal), not a second request. */
const SECOND_SIGNAL_AFTER_MS = 1000;

export const SYSTEMD_UNIT = `[Unit]
Description=Ray Agent: contribute this machine to a Ray cluster
Requires=docker.service
After=docker.service network-online.target
Wants=network-online.target

[Service]
# The user who ran \`ray-agent join\` (its settings folder), in the docker group.
User=ray
ExecStart=/usr/local/bin/ray-agent run
Restart=on-failure
RestartSec=10
# More than the agent's stop budget: drain deadline 25 s + 10 s + Docker's 5 s.
TimeoutStopSec=90
KillMode=mixed

[Install]
WantedBy=multi-user.target`;

/**
 * `ray-agent run`: the policy where no desktop runs it. In the foreground (a systemd service, a terminal): watches
 * the settings file, runs the policy loop on the machine's own signals (clock, battery where the OS reports one;
 * a server reports no idle time), logs each change of the policy's sentence on one line, and on SIGTERM/SIGINT
 * stops the loop and, when settings.onQuit is 'stop', drains and stops the agent; then exits 0.
 */
export function addRunCommand(program: Command, io: CliIo): void {
  program
    .command('run')
    .description('apply the contribution policy in the foreground, for machines without a desktop (systemd)')
    .addHelpText(
      'after',
      `\nJoin first (\`ray-agent join …\`), as the user the service runs as. A systemd unit, e.g. /etc/systemd/system/ray-agent.service:\n\n${SYSTEMD_UNIT}\n\nthen: systemctl daemon-reload && systemctl enable --now ray-agent; journalctl -u ray-agent -f`,
    )
    .action(async () => {
      const globals = program.opts<Globals>();
      const ctx = context(globals, io);
      if (!ctx.settings.clusterAddress || !ctx.settings.managerUrl)
        fail('no cluster configured: run `ray-agent join --head … --manager … --token-file …` first');
      mkdirSync(globals.settingsDir, { recursive: true });
      const claim = claimRunPid(globals.settingsDir);
      if ('heldBy' in claim) fail(`another \`ray-agent run\` (pid ${claim.heldBy}) applies these settings already`);
      try {
        await runUntilSignalled(ctx, io);
      } finally {
        claim.release();
      }
    });
}

const log = (io: CliIo, line: string) => io.stdout(`${new Date().toISOString()} ${line}\n`);

async function runUntilSignalled(ctx: CliContext, io: CliIo): Promise<void> {
  let signalled: ((signal: NodeJS.Signals) => void) | null = null;
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => {
    signalled = resolve;
  });
  let firstAt: number | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    if (firstAt === null) {
      firstAt = Date.now();
      signalled?.(signal);
      return;
    }
    // atomically (under conf, the settings writes) re-raises a signal it saw once its cleanup ran: that echo comes
    // at once and is not the person's second signal.
    if (Date.now() - firstAt < SECOND_SIGNAL_AFTER_MS) return;
    // A second signal ends this process at once; the agent's own stop (Docker's) carries on without it.
    log(io, `${signal} again: exiting now; the agent finishes its own stop`);
    process.exit(130);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    if (!(await engineReady(ctx, io, stopRequested))) return;
    await policyUntil(ctx, io, stopRequested);
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

/** At boot the engine may come up after this service: wait for it instead of failing (crash-only, no restart loop). */
async function engineReady(ctx: CliContext, io: CliIo, stop: Promise<NodeJS.Signals>): Promise<boolean> {
  let said = '';
  for (;;) {
    const state = await ctx.engine.check();
    if (state.kind === 'ready') return true;
    const line = `waiting for Docker: ${state.message} ${state.fix}`.trim();
    if (line !== said) log(io, line);
    said = line;
    const outcome = await Promise.race([stop, sleep(ENGINE_RETRY_MS).then(() => null)]);
    if (outcome !== null) {
      log(io, `${outcome}: stopped before Docker was ready`);
      return false;
    }
  }
}

async function policyUntil(ctx: CliContext, io: CliIo, stop: Promise<NodeJS.Signals>): Promise<void> {
  // Loaded here: the other commands never need the policy engine.
  const [{ PolicyLoop }, { headlessSignals }] = await Promise.all([
    import('../policy/policy-loop.js'),
    import('../policy/machine-signals.js'),
  ]);
  const network = ctx.globals.dockerNetwork;
  let managerCaPem = await deliveredManagerCa(ctx);
  const specOf = (settings: Settings): AgentSpec | undefined =>
    settings.clusterAddress && settings.managerUrl
      ? cliSpec(settings, ctx.agent.name, { managerCaPem, network })
      : undefined;
  let spec = specOf(ctx.settings);
  const inner = containerActuator({ agent: ctx.agent, spec: () => spec, onProgress: progressPrinter(io) });
  // The last target, so a changed spec (limits, image, cluster) is applied to the container at once.
  let lastTarget: PolicyTarget | null = null;
  const actuator: PolicyActuator = {
    apply: (target) => {
      lastTarget = target;
      return inner.apply(target);
    },
  };
  let lastSentence = '';
  let stopping = false;
  const loop = new PolicyLoop({
    actuator,
    readSignals: headlessSignals(),
    readInput: () => ({ policy: ctx.settings.policy, contribute: ctx.settings.contribute, stopMode: null }),
    onView: (view: PolicyView) => {
      if (view.sentence === lastSentence) return;
      lastSentence = view.sentence;
      log(io, `policy: ${view.sentence}`);
    },
    onError: (error: unknown) => log(io, `error: ${(error as Error).message ?? String(error)}`),
  });

  // Set when the container must follow a changed spec; kept until an apply succeeds (a `join` running at the same
  // moment may hold the container), retried on every poll.
  let reapply = false;
  const settingsChanged = async () => {
    const loaded = ctx.store.load();
    if (JSON.stringify(loaded.settings) !== JSON.stringify(ctx.settings)) {
      const before = ctx.settings;
      ctx.settings = loaded.settings;
      log(io, `settings changed: ${changedKeys(before, loaded.settings).join(', ')}`);
      // A join to another cluster may have brought a new CA into the volume.
      if (before.managerUrl !== loaded.settings.managerUrl) managerCaPem = await deliveredManagerCa(ctx);
      const next = specOf(loaded.settings);
      if (shapeOf(next) !== shapeOf(spec)) reapply = true;
      spec = next;
      await loop.poke();
    }
    // The loop applies a target only when it changes; the same target over a new spec is applied here.
    const target = lastTarget;
    if (reapply && target !== null && !stopping) {
      reapply = false;
      if (target.kind === 'stopped') return; // a stopped agent starts with the new spec
      try {
        await actuator.apply(target);
      } catch (error) {
        reapply = true;
        throw error;
      }
    }
  };
  // One at a time, in order; the stop waits for the one in flight, so nothing starts the agent after its stop.
  let changing: Promise<void> = Promise.resolve();
  const watcher = watchSettings(ctx.store.dir, () => {
    changing = changing
      .then(() => (stopping ? undefined : settingsChanged()))
      .catch((error: unknown) => log(io, `error: ${(error as Error).message}`));
  });

  log(io, `running the policy for ${ctx.agent.name} (settings: ${ctx.store.file})`);
  loop.start();
  const signal = await stop;
  log(io, `${signal}: stopping the policy`);
  stopping = true;
  watcher.close();
  await changing;
  await loop.stop();
  if (ctx.settings.onQuit === 'stop') {
    log(io, 'draining and stopping the agent (onQuit = stop): running tasks may finish first');
    const result = await ctx.agent.down();
    log(io, result.existed ? 'the agent stopped' : 'no agent was running');
  } else {
    log(io, 'leaving the agent running (onQuit = leave-running)');
  }
}

/** What makes the container, the CPU and memory figures included (the hash leaves them out: they change live). */
function shapeOf(spec: AgentSpec | undefined): string {
  return spec === undefined
    ? ''
    : `${configHash(spec)}/${spec.cpus}/${spec.memoryBytes}/${spec.managerCaPem === undefined ? '' : 'ca'}`;
}

function changedKeys(before: Settings, after: Settings): string[] {
  return (Object.keys(after) as Array<keyof Settings>).filter(
    (key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]),
  );
}

/** The folder, not the file: the file is replaced by a rename on every save. Plus a poll for missed events. */
function watchSettings(dir: string, onChange: () => void): { close: () => void } {
  let settle: NodeJS.Timeout | undefined;
  const soon = () => {
    clearTimeout(settle);
    settle = setTimeout(onChange, SETTINGS_SETTLE_MS);
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, (_event, name) => {
      if (name === null || String(name).startsWith('config.json')) soon();
    });
    watcher.on('error', () => undefined); // the poll below carries on
  } catch {
    watcher = undefined;
  }
  const poll = setInterval(onChange, SETTINGS_POLL_MS);
  return {
    close: () => {
      clearTimeout(settle);
      clearInterval(poll);
      watcher?.close();
    },
  };
}

/** Unref'd: a wait for Docker never keeps a stopped run from exiting. */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
