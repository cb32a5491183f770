import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { tarFiles } from '../src/engine/tar.js';

describe('tarFiles', () => {
  test('GNU tar reads the archive back with the names, contents, modes and owners written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rap-tar-'));
    const archive = join(dir, 'a.tar');
    const big = 'x'.repeat(1500);
    writeFileSync(
      archive,
      tarFiles([
        { name: 'secrets', directory: true, mode: 0o700, uid: 1000, gid: 1000 },
        { name: 'secrets/token', content: 'abc\n', mode: 0o600, uid: 1000, gid: 1000 },
        { name: 'big.txt', content: big, mode: 0o644, uid: 10001, gid: 10001 },
      ]),
    );
    const listing = execFileSync('tar', ['-tvf', archive, '--numeric-owner'], { encoding: 'utf8' });
    expect(listing).toMatch(/^drwx------ 1000\/1000 +0 .* secrets\/$/m);
    expect(listing).toMatch(/^-rw------- 1000\/1000 +4 .* secrets\/token$/m);
    expect(listing).toMatch(/^-rw-r--r-- 10001\/10001 +1500 .* big.txt$/m);
    const out = join(dir, 'out');
    execFileSync('mkdir', [out]);
    execFileSync('tar', ['-xf', archive, '-C', out, '--same-owner', '--same-permissions']);
    expect(readFileSync(join(out, 'secrets/token'), 'utf8')).toBe('abc\n');
    expect(readFileSync(join(out, 'big.txt'), 'utf8')).toBe(big);
    expect(statSync(join(out, 'secrets/token')).mode & 0o777).toBe(0o600);
    expect(statSync(join(out, 'secrets/token')).uid).toBe(1000);
  });
});
