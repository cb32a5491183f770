import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { MAX_REJECTED, UPDATE_STATE_FILE, type UpdateState, UpdateStateStore } from '../src/app/update-state.js';

const dirs: string[] = [];
const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

function store(): UpdateStateStore {
  const dir = mkdtempSync(path.join(tmpdir(), 'ra-update-state-'));
  dirs.push(dir);
  return new UpdateStateStore(dir);
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('UpdateStateStore', () => {
  test('no file: the empty state, and nothing is written by reading', () => {
    const s = store();
    expect(s.load()).toEqual({ state: { version: 1, rejected: [], switch: null }, notice: null });
    expect(existsSync(s.file)).toBe(false);
  });

  test('saves and loads a switch and the rejected digests; no temp file is left', () => {
    const s = store();
    const state: UpdateState = {
      version: 1,
      rejected: [{ image: 'r/a:stable', digest: digest(1), at: new Date().toISOString(), reason: 'no' }],
      switch: {
        phase: 'switching',
        image: 'r/a:stable',
        digest: digest(2),
        newImageId: 'sha256:new',
        previousImageId: 'sha256:old',
        startedAt: new Date().toISOString(),
        reason: null,
      },
    };
    s.save(state);
    expect(s.load()).toEqual({ state, notice: null });
    expect(readdirSync(s.dir)).toEqual([UPDATE_STATE_FILE]);
  });

  test('keeps only the newest MAX_REJECTED digests', () => {
    const s = store();
    const at = new Date().toISOString();
    const rejected = Array.from({ length: MAX_REJECTED + 5 }, (_, n) => ({
      image: 'a:b',
      digest: digest(n),
      at,
      reason: '',
    }));
    s.save({ version: 1, rejected, switch: null });
    const loaded = s.load().state.rejected;
    expect(loaded).toHaveLength(MAX_REJECTED);
    expect(loaded[0]?.digest).toBe(digest(5));
    expect(loaded.at(-1)?.digest).toBe(digest(MAX_REJECTED + 4));
  });

  test('refuses to save a state that is not one, naming the field', () => {
    const s = store();
    expect(() =>
      s.save({
        version: 1,
        rejected: [{ image: 'a:b', digest: 'latest', at: new Date().toISOString(), reason: '' }],
        switch: null,
      }),
    ).toThrow(/sha256/);
    expect(existsSync(s.file)).toBe(false);
  });

  test('an unreadable file is kept aside with its bytes and the state starts empty, with a notice', () => {
    const s = store();
    writeFileSync(s.file, '{"version":1,"rejected":[');
    const { state, notice } = s.load();
    expect(state).toEqual({ version: 1, rejected: [], switch: null });
    expect(notice).toMatch(/unreadable \(not JSON/);
    const kept = readdirSync(s.dir).filter((name) => name.startsWith(`${UPDATE_STATE_FILE}.corrupt-`));
    expect(kept).toHaveLength(1);
    expect(readFileSync(path.join(s.dir, kept[0] as string), 'utf8')).toBe('{"version":1,"rejected":[');
    // A valid JSON of the wrong shape names the field.
    writeFileSync(s.file, JSON.stringify({ version: 1, rejected: [], switch: { phase: 'dancing' } }));
    expect(s.load().notice).toMatch(/switch\.phase/);
  });
});
