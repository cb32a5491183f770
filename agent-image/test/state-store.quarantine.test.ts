/**
 * Issue 8, item 1: every "unknown provider" moves the credentials aside, so a loop of re-registrations used to fill
 * the state volume with kept-aside files. Only the newest QUARANTINE_KEEP per file and reason stay; other files and
 * other reasons are untouched; the file just moved aside is always kept.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { QUARANTINE_KEEP, StateStore } from '../src/state/state-store.js';
import { tempDir } from './helpers.js';

function setUp() {
  const dir = tempDir('agent-quarantine-');
  const store = new StateStore(dir);
  store.preflight();
  return { dir, store };
}

/** Writes credentials.json holding `content` and moves it aside as the supervisor does on unknown_provider. */
function quarantineOnce(store: StateStore, content: string): string {
  writeFileSync(store.credentialsPath, content);
  return store.quarantine(store.credentialsPath, 'unknown-provider');
}

function kept(dir: string, prefix: string): string[] {
  return readdirSync(dir)
    .filter((name) => name.startsWith(prefix))
    .map((name) => readFileSync(join(dir, name), 'utf8'))
    .sort();
}

afterEach(() => {
  vi.useRealTimers();
});

describe('StateStore.quarantine keeps a bounded number of files', () => {
  it('keeps the newest 5 of 12 re-registrations, bytes intact, and leaves other files and reasons alone', () => {
    const { dir, store } = setUp();
    writeFileSync(join(dir, 'install-id.invalid-2026-01-01T00-00-00-000Z'), 'other file');
    writeFileSync(join(dir, 'credentials.json.corrupt-2026-01-01T00-00-00-000Z'), 'other reason');
    writeFileSync(store.installIdPath, 'kept in place\n');
    vi.useFakeTimers({ toFake: ['Date'] });
    const paths: string[] = [];
    for (let n = 1; n <= 12; n += 1) {
      vi.setSystemTime(new Date(Date.UTC(2026, 4, 1, 10, 0, n)));
      paths.push(quarantineOnce(store, `credentials ${String(n).padStart(2, '0')}`));
    }
    expect(QUARANTINE_KEEP).toBe(5);
    expect(kept(dir, 'credentials.json.unknown-provider-')).toEqual([
      'credentials 08',
      'credentials 09',
      'credentials 10',
      'credentials 11',
      'credentials 12',
    ]);
    expect(readFileSync(paths.at(-1) ?? '', 'utf8')).toBe('credentials 12'); // the returned path is the kept file
    expect(kept(dir, 'install-id.invalid-')).toEqual(['other file']);
    expect(kept(dir, 'credentials.json.corrupt-')).toEqual(['other reason']);
    expect(readFileSync(store.installIdPath, 'utf8')).toBe('kept in place\n');
    expect(readdirSync(dir)).not.toContain('credentials.json');
  });

  it('does not overwrite one moved aside in the same millisecond, and keeps the newest by order', () => {
    const { dir, store } = setUp();
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date(Date.UTC(2026, 4, 1, 10, 0, 0)));
    const paths = Array.from({ length: 7 }, (_, n) => quarantineOnce(store, `same ms ${n}`));
    expect(new Set(paths).size).toBe(7);
    expect(kept(dir, 'credentials.json.unknown-provider-')).toEqual([
      'same ms 2',
      'same ms 3',
      'same ms 4',
      'same ms 5',
      'same ms 6',
    ]);
  });

  it('keeps the file just moved aside even when the clock stepped back', () => {
    const { dir, store } = setUp();
    vi.useFakeTimers({ toFake: ['Date'] });
    for (let n = 1; n <= 5; n += 1) {
      vi.setSystemTime(new Date(Date.UTC(2026, 4, 1, 10, 0, n)));
      quarantineOnce(store, `before ${n}`);
    }
    vi.setSystemTime(new Date(Date.UTC(2025, 0, 1))); // a year earlier: its name sorts first
    const newest = quarantineOnce(store, 'after the step');
    expect(readFileSync(newest, 'utf8')).toBe('after the step');
    expect(kept(dir, 'credentials.json.unknown-provider-')).toEqual([
      'after the step',
      'before 2',
      'before 3',
      'before 4',
      'before 5',
    ]);
  });

  it('prunes what a crash between the rename and the pruning left over, on the next quarantine', () => {
    const { dir, store } = setUp();
    // Eight kept-aside files: what a crash right after a rename (before its pruning) of an older version leaves.
    for (let n = 1; n <= 8; n += 1)
      writeFileSync(join(dir, `credentials.json.unknown-provider-2026-05-01T10-00-0${n}-000Z`), `left ${n}`);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date(Date.UTC(2026, 4, 1, 10, 1, 0)));
    quarantineOnce(store, 'new');
    expect(kept(dir, 'credentials.json.unknown-provider-')).toEqual(['left 5', 'left 6', 'left 7', 'left 8', 'new']);
  });
});
