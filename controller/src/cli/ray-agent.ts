#!/usr/bin/env node
import { buildCli } from './cli.js';

buildCli()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    process.stderr.write(`ray-agent: ${(error as Error).message}\n`);
    process.exit(1);
  });
