#!/usr/bin/env node
import { buildCli, CliError } from './cli.js';

buildCli()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    const lines = error instanceof CliError ? error.lines : [(error as Error).message];
    process.stderr.write(lines.map((line) => `ray-agent: ${line}\n`).join(''));
    process.exit(1);
  });
