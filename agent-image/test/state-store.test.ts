import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '@ray-agent/tunnel/atomic-file';
import { describe, expect, it } from 'vitest';
import { CorruptCredentialsError, type Credentials, StateDirError, StateStore } from '../src/state/state-store.js';
import { tempDir } from './helpers.js';

const CREDENTIALS: Credentials = {
  version: 1,
  providerId: 'alices-desktop-7f3a',
  credential: 'cred_0123456789abcdef0123456789abcdef0123',
  managerBase: 'https://m.test',
  registeredAt: '2026-05-01T10:00:00.000Z',
};

/** Asserts `run` throws a StateDirError and returns it. */
function stateDirError(run: () => void): StateDirError {
  try {
    run();
  } catch (error) {
    if (error instanceof StateDirError) return error;
    throw error;
  }
  throw new Error('expected a StateDirError');
}

describe('StateStore.preflight', () => {
  it('creates a missing state directory, private to the agent', () => {
    const dir = join(tempDir('agent-state-'), 'nested', 'state');
    new StateStore(dir).preflight();
    expect(statSync(dir).isDirectory()).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir)).toEqual([]); // the write probe is gone
  });

  it('refuses a path that is a file, naming the fix', () => {
    const file = join(tempDir('agent-state-'), 'state');
    writeFileSync(file, 'not a directory');
    const error = stateDirError(() => new StateStore(file).preflight());
    expect(error.message).toContain(file);
    expect(error.message).toMatch(/not a directory/);
    expect(error.message).toMatch(/mount a writable volume there, e\.g\. -v /);
  });

  it('refuses a directory that cannot be created, naming the fix', () => {
    const file = join(tempDir('agent-state-'), 'blocker');
    writeFileSync(file, 'a file where a directory should be');
    const dir = join(file, 'state');
    const error = stateDirError(() => new StateStore(dir).preflight());
    expect(error.message).toContain(dir);
    expect(error.message).toMatch(/not writable \(ENOTDIR\)/);
    expect(error.message).toMatch(/mount a writable volume there, e\.g\. -v ray-agent-state:/);
  });

  it('removes temp files a crash left behind, and nothing else', () => {
    const dir = tempDir('agent-state-');
    writeFileSync(join(dir, 'credentials.json.tmp-4242'), '{"half": ');
    writeFileSync(join(dir, 'install-id.tmp-7'), '');
    writeFileSync(join(dir, 'credentials.json'), 'kept');
    writeFileSync(join(dir, 'credentials.json.corrupt-2026-05-01T10-00-00-000Z'), 'kept');
    new StateStore(dir).preflight();
    expect(readdirSync(dir).sort()).toEqual(['credentials.json', 'credentials.json.corrupt-2026-05-01T10-00-00-000Z']);
  });
});

describe('StateStore.installId', () => {
  it('is created once and stable across instances', () => {
    const dir = tempDir('agent-state-');
    const first = new StateStore(dir);
    first.preflight();
    const id = first.installId();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(first.installId()).toBe(id);
    expect(new StateStore(dir).installId()).toBe(id);
    expect(readFileSync(join(dir, 'install-id'), 'utf8').trim()).toBe(id);
  });

  it('sets a garbage install ID aside and makes a new one', () => {
    const dir = tempDir('agent-state-');
    writeFileSync(join(dir, 'install-id'), 'not-a-uuid\n');
    const id = new StateStore(dir).installId();
    expect(id).not.toBe('not-a-uuid');
    expect(new StateStore(dir).installId()).toBe(id);
    const kept = readdirSync(dir).filter((name) => name.startsWith('install-id.invalid-'));
    expect(kept).toHaveLength(1);
    expect(readFileSync(join(dir, kept[0] ?? ''), 'utf8')).toBe('not-a-uuid\n');
  });
});

describe('StateStore credentials', () => {
  it('round-trip through a 0600 file', () => {
    const dir = tempDir('agent-state-');
    const store = new StateStore(dir);
    store.preflight();
    expect(store.loadCredentials()).toBeUndefined();
    store.saveCredentials(CREDENTIALS);
    expect(statSync(store.credentialsPath).mode & 0o777).toBe(0o600);
    expect(new StateStore(dir).loadCredentials()).toEqual(CREDENTIALS);
    expect(readdirSync(dir).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('replace the previous credentials whole', () => {
    const store = new StateStore(tempDir('agent-state-'));
    store.saveCredentials(CREDENTIALS);
    const next = { ...CREDENTIALS, providerId: 'alices-desktop-9b0c', credential: 'x'.repeat(64) };
    store.saveCredentials(next);
    expect(store.loadCredentials()).toEqual(next);
  });

  it.each([
    ['garbage bytes', '\u0000\u0001 not json at all'],
    ['truncated JSON', '{"version": 1, "providerId": "alices-de'],
    ['JSON of the wrong shape', JSON.stringify({ ...CREDENTIALS, credential: 'too-short' })],
    ['an unsafe provider ID', JSON.stringify({ ...CREDENTIALS, providerId: '../../etc' })],
  ])('that are %s are kept aside, bytes intact, with CorruptCredentialsError', (_name, content) => {
    const dir = tempDir('agent-state-');
    const store = new StateStore(dir);
    writeFileSync(store.credentialsPath, content);
    let error: unknown;
    try {
      store.loadCredentials();
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(CorruptCredentialsError);
    const keptAt = (error as CorruptCredentialsError).keptAt;
    expect(keptAt.startsWith(`${store.credentialsPath}.corrupt-`)).toBe(true);
    expect(readFileSync(keptAt, 'utf8')).toBe(content);
    expect(existsSync(store.credentialsPath)).toBe(false);
    expect((error as Error).message).toContain(keptAt);
    // Next start: nothing to load, so the agent registers anew instead of failing again.
    expect(store.loadCredentials()).toBeUndefined();
  });
});

describe('writeFileAtomic', () => {
  it('writes the whole content with the requested mode and leaves no temp file', () => {
    const dir = tempDir('agent-state-');
    const path = join(dir, 'file');
    writeFileAtomic(path, 'first');
    writeFileAtomic(path, 'second, longer content');
    expect(readFileSync(path, 'utf8')).toBe('second, longer content');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['file']);
  });

  it('keeps the old content and removes its temp file when the rename fails', () => {
    const dir = tempDir('agent-state-');
    const path = join(dir, 'target');
    mkdirSync(path); // renaming a file over a directory fails
    writeFileSync(join(path, 'inside'), 'untouched');
    expect(() => writeFileAtomic(path, 'new')).toThrow();
    expect(readFileSync(join(path, 'inside'), 'utf8')).toBe('untouched');
    expect(readdirSync(dir)).toEqual(['target']);
  });
});
