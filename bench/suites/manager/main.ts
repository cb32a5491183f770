// Runs the manager suite alone, until the bench registry runs it (needs `npm run build -w manager` first):
//   npx tsx bench/suites/manager/main.ts [full|quick|smoke] > manager.json
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Profile } from '../../lib/suite.js';
import { suite } from './index.js';

const profile = (process.argv[2] ?? 'smoke') as Profile;
if (!(profile in suite.profiles)) throw new Error(`profile: "${profile}" is not full, quick or smoke (e.g. smoke)`);
const tmp = mkdtempSync(join(tmpdir(), 'ra-h3-bench-manager-'));
try {
  const data = suite.data.parse(
    await suite.run({ runId: 'manager', profile, tmp, image: '', imageId: '', holder: null }, suite.profiles[profile]),
  );
  process.stdout.write(`${JSON.stringify({ data, figures: suite.figuresOf(data) }, null, 2)}\n`);
  process.stderr.write(`${suite.details(data)}\n`);
} finally {
  if (process.env.BENCH_KEEP !== '1') rmSync(tmp, { recursive: true, force: true });
}
