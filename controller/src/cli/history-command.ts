import type { Command } from 'commander';
import { HistoryStore } from '../history/history-store.js';
import { historyTable } from '../history/history-table.js';
import type { CliIo, Globals } from './cli-context.js';

/** `ray-agent history`: what this computer gave, per hour for a day or per day for a month, from the local store. */
export function addHistoryCommand(program: Command, io: CliIo): void {
  program
    .command('history')
    .description('what this computer gave: CPU time, tasks, time contributing and paused (why), kept on this machine')
    .option('--days', 'the last 30 days, one row per day (default: the last 24 hours, one row per hour)')
    .action((options: { days?: boolean }) => {
      const store = new HistoryStore(program.opts<Globals>().settingsDir);
      if (store.notice) io.stderr(`${store.notice}\n`);
      io.stdout(`${historyTable(store.document(), { view: options.days ? 'days' : 'hours', now: Date.now() })}\n`);
    });
}
