/**
 * Ray spills to the spill volume when it is mounted writable (SPILL_DIR, disk-backed, outside the memory cgroup),
 * and keeps its default otherwise; what an earlier node spilled is cleared before the next node starts.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clearSpillDirectory, type RayNodeOptions, rayStartArgs, spillDirectory } from '../src/supervisor/ray-node.js';
import { rayNodeOptions, tempDir } from './helpers.js';

const options = (spillDir: string | undefined): RayNodeOptions => rayNodeOptions({ spillDir: spillDir });

const spillArgs = (args: string[]) => args.filter((arg) => arg.startsWith('--object-spilling-directory'));

describe('where Ray spills', () => {
  it('to the spill directory when there is one', () => {
    expect(spillArgs(rayStartArgs(options('/var/lib/ray-agent-spill')))).toEqual([
      '--object-spilling-directory=/var/lib/ray-agent-spill',
    ]);
    expect(spillArgs(rayStartArgs(options(undefined)))).toEqual([]);
  });

  it('the directory counts only when it is writable (a read-only root without the volume keeps the default)', () => {
    const dir = tempDir();
    expect(spillDirectory(dir)).toBe(dir);
    expect(spillDirectory(join(dir, 'missing'))).toBeUndefined();
    if (process.getuid?.() !== 0) {
      chmodSync(dir, 0o500);
      expect(spillDirectory(dir)).toBeUndefined();
      chmodSync(dir, 0o700);
    }
  });

  it("clears an earlier node's spilled objects, and only below the directory", () => {
    const dir = tempDir();
    const spill = join(dir, 'spill');
    mkdirSync(join(spill, 'ray_spilled_objects_0123'), { recursive: true });
    writeFileSync(join(spill, 'ray_spilled_objects_0123', 'obj'), 'x'.repeat(1024));
    writeFileSync(join(dir, 'beside'), 'kept');
    clearSpillDirectory(spill);
    expect(readdirSync(spill)).toEqual([]);
    expect(existsSync(join(dir, 'beside'))).toBe(true);
  });
});
