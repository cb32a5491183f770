// Runs the image suite alone, until the bench registry runs it:
//   npx tsx bench/suites/image/main.ts [IMAGE] [full|quick|smoke] > image.json
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Profile } from '../../lib/suite.js';
import { docker } from '../../lib/util.js';
import { suite } from './index.js';

const image = process.argv[2] ?? process.env.AGENT_IMAGE ?? 'ray-agent:dev';
const profile = (process.argv[3] ?? 'smoke') as Profile;
if (!(profile in suite.profiles)) throw new Error(`profile: "${profile}" is not full, quick or smoke (e.g. smoke)`);
const tmp = mkdtempSync(join(tmpdir(), 'ra-bench-image-'));
try {
  const imageId = await docker('image', 'inspect', '-f', '{{.Id}}', image);
  const data = suite.data.parse(
    await suite.run({ runId: 'image', profile, tmp, image, imageId, holder: null }, suite.profiles[profile]),
  );
  process.stdout.write(`${JSON.stringify({ data, figures: suite.figuresOf(data) }, null, 2)}\n`);
  process.stderr.write(suite.details(data));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
