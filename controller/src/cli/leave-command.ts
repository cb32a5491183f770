import type { Command } from 'commander';
import { leaveCluster } from '../app/leave.js';
import { TokenVault } from '../app/token-vault.js';
import { type CliIo, context, deliveredManagerCa, fail, type Globals, requireEngine } from './cli-context.js';
import { runningRunPid } from './run-pid.js';

/** The CLI has no keychain: its vault can only remove a token file the tray app left in the same settings folder. */
const NO_KEYCHAIN = {
  isEncryptionAvailable: () => false,
  backend: () => 'none',
  encrypt: (): Buffer => fail('the command line cannot store a token in a keychain'),
  decrypt: (): string => fail('the command line cannot read a token from a keychain'),
};

/** `ray-agent leave`: what the window's "Leave this cluster" does, and the same report. */
export function addLeaveCommand(program: Command, io: CliIo): void {
  program
    .command('leave')
    .description(
      'leave the cluster for good: drain, deregister from the manager, remove the containers, their volumes, the image, the token and the settings; then list what is left',
    )
    .action(async () => {
      const globals = program.opts<Globals>();
      // A running `ray-agent run` would start the agent again while it is being removed.
      const pid = runningRunPid(globals.settingsDir);
      if (pid !== null)
        fail(`\`ray-agent run\` (pid ${pid}) manages the agent: stop it first (kill ${pid}), then leave`);
      const ctx = context(globals, io);
      await requireEngine(ctx.engine);
      // Read before leaving: leaving deletes the settings and the state volume that hold them.
      const managerCaPem = await deliveredManagerCa(ctx);
      io.stderr('draining the agent, then telling the manager and removing what this computer holds\n');
      const report = await leaveCluster({
        docker: ctx.engine.docker,
        agent: ctx.agent,
        settingsDir: globals.settingsDir,
        vault: new TokenVault(globals.settingsDir, NO_KEYCHAIN),
        managerUrl: ctx.settings.managerUrl,
        managerCaPem,
        image: ctx.settings.image,
        log: (line) => io.stderr(`  ${line}\n`),
      });
      io.stdout(`${report.deregistered ? 'the manager was told: this provider left' : 'no registration to end'}\n`);
      for (const line of report.removed) io.stdout(`removed: ${line}\n`);
      if (report.leftovers.length === 0) io.stdout('left behind: nothing\n');
      else {
        for (const line of report.leftovers) io.stdout(`left behind: ${line}\n`);
        fail('some things were not removed (listed above); run `ray-agent leave` again to retry');
      }
    });
}
